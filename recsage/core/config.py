"""Frozen-dataclass configs that round-trip through JSON (config.json of saved models)."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C", bound="ConfigMixin")


class ConfigMixin:
    """`to_dict` / `from_dict` for dataclass configs; unknown keys from older files are ignored."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in d.items() if k in names})


def read_saved_meta(directory: str | Path, expected_class: str, format_version: int, *, what: str = "model") -> dict[str, Any]:
    """config.json of a saved folder, checked for class and format (one error wording everywhere)."""
    from recsage.core.errors import InvalidInputError

    path = Path(directory) / "config.json"
    if not path.exists():
        raise InvalidInputError(f"not a saved {what} (no config.json)", file=str(Path(directory)))
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"config.json is not valid JSON ({e.msg})", file=str(path)) from None
    if meta.get("class") != expected_class or meta.get("format_version") != format_version:
        raise InvalidInputError(f"expected a {expected_class} {what} of format {format_version}, got {meta.get('class')} v{meta.get('format_version')}",
                                file=str(path), field="class")
    return meta
