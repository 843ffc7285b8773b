"""The category prompt library: named copy styles with instructions and examples (YAML, user-extensible)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from recsage.core.errors import InvalidInputError

BUILTIN_LIBRARY = Path(__file__).with_name("styles.yaml")


@dataclass(frozen=True)
class Style:
    name: str
    description: str
    instructions: str
    examples: tuple[str, ...]
    markers: tuple[str, ...] = ()  # regexes; a copy "has" the style when any matches

    def matches(self, text: str) -> bool | None:
        """Surface check of the style (None when the style defines no markers)."""
        if not self.markers:
            return None
        return any(re.search(m, text) for m in self.markers)


@dataclass(frozen=True)
class StyleLibrary:
    styles: dict[str, Style]
    version: str

    @property
    def names(self) -> list[str]:
        return list(self.styles)

    @property
    def fingerprint(self) -> str:
        body = json.dumps({n: [s.instructions, list(s.examples)] for n, s in sorted(self.styles.items())})
        return f"{self.version}-{hashlib.sha256(body.encode()).hexdigest()[:8]}"

    def get(self, name: str) -> Style:
        if name not in self.styles:
            raise InvalidInputError(f"unknown style {name!r}; known: {', '.join(self.names)}", field="style")
        return self.styles[name]

    def select(self, names: list[str] | None) -> list[Style]:
        if names is not None and not names:
            raise InvalidInputError("the style list is empty; pass at least one of: " + ", ".join(self.names), field="styles")
        return [self.get(n) for n in (names or self.names)]

    def merged(self, other: StyleLibrary) -> StyleLibrary:
        return StyleLibrary({**self.styles, **other.styles}, f"{self.version}+{other.version}")


def load_style_library(path: str | Path | None = None, *, extend_builtin: bool = True) -> StyleLibrary:
    """The built-in library, or a user YAML/JSON file (merged over the built-ins by default)."""
    builtin = _read(BUILTIN_LIBRARY)
    if path is None:
        return builtin
    user = _read(Path(path))
    return builtin.merged(user) if extend_builtin else user


def _read(path: Path) -> StyleLibrary:
    try:
        body = yaml.safe_load(path.read_text()) if path.suffix in (".yaml", ".yml") else json.loads(path.read_text())
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as e:
        raise InvalidInputError(f"cannot read style library ({e})", file=str(path)) from e
    if not isinstance(body, dict) or not isinstance(body.get("styles"), dict) or not body["styles"]:
        raise InvalidInputError("style library needs a non-empty 'styles' mapping", file=str(path), field="styles")
    styles = {}
    for name, spec in body["styles"].items():
        if not isinstance(spec, dict):
            raise InvalidInputError("style must be a mapping", file=str(path), record=name)
        for key in ("instructions", "examples"):
            if not spec.get(key):
                raise InvalidInputError(f"style needs '{key}'", file=str(path), record=name, field=key)
        examples = spec["examples"]
        if not isinstance(examples, list) or not all(isinstance(e, str) and e.strip() for e in examples):
            raise InvalidInputError("examples must be a list of non-empty strings", file=str(path), record=name, field="examples")
        markers = tuple(str(m) for m in spec.get("markers", []) or [])
        for m in markers:
            try:
                re.compile(m)
            except re.error as e:
                raise InvalidInputError(f"bad marker regex {m!r} ({e})", file=str(path), record=name, field="markers") from None
        styles[str(name)] = Style(str(name), str(spec.get("description", "")), str(spec["instructions"]), tuple(examples), markers)
    return StyleLibrary(styles, str(body.get("version", "1")))
