"""Tag vocabularies: seeded from data, extended by the LLM, consolidated by embedding clustering.

A vocabulary is a versioned file: its version is a hash of its canonical tags, so every tagging
result can say exactly which vocabulary it was restricted to.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from recsage.core.errors import InvalidInputError

MAX_TAGS = 400  # enum-constrained decoding and graph matrices both degrade past this
_SPACE = re.compile(r"\s+")
GENERIC_TAGS = frozenset({"movie", "movies", "film", "films", "product", "products", "item", "items", "book", "books", "thing", "general", "other", "misc", "people", "person"})


def normalise_tag(text: str) -> str:
    return _SPACE.sub(" ", str(text).strip().strip(".,;:").lower())


@dataclass(frozen=True)
class Tag:
    name: str
    kind: str  # "topic" | "role"
    group: str = ""  # e.g. genre, category, occupation, age, gender, llm
    source: str = "seed"  # "seed" | "llm"
    aliases: tuple[str, ...] = ()


@dataclass
class TagVocabulary:
    """Canonical tags of one kind with aliases; `lookup` maps any alias to its canonical name."""

    kind: str
    tags: list[Tag] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("topic", "role"):
            raise InvalidInputError(f"vocabulary kind must be 'topic' or 'role', got {self.kind!r}", field="kind")
        seen: dict[str, str] = {}
        for t in self.tags:
            if not t.name.strip():
                raise InvalidInputError("empty tag name", field="name")
            for alias in (t.name, *t.aliases):
                key = normalise_tag(alias)
                if key in seen and seen[key] != t.name:
                    raise InvalidInputError(f"alias {alias!r} belongs to both {seen[key]!r} and {t.name!r}", field="aliases")
                seen[key] = t.name
        if len(self.tags) > MAX_TAGS:
            raise InvalidInputError(f"{len(self.tags)} {self.kind} tags exceed the limit of {MAX_TAGS}; consolidate with a higher threshold or min_count", field="tags")
        self._lookup = seen

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tags]

    @property
    def version(self) -> str:
        payload = json.dumps([(t.name, t.group, sorted(t.aliases)) for t in self.tags], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def __len__(self) -> int:
        return len(self.tags)

    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def lookup(self, text: str) -> str | None:
        return self._lookup.get(normalise_tag(text))

    def group_of(self, name: str) -> str:
        return next((t.group for t in self.tags if t.name == name), "")

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"kind": self.kind, "version": self.version, "meta": self.meta, "tags": [asdict(t) for t in self.tags]}
        path.write_text(json.dumps(body, indent=2, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> TagVocabulary:
        path = Path(path)
        try:
            body = json.loads(path.read_text())
            tags = [Tag(**{**t, "aliases": tuple(t.get("aliases", ()))}) for t in body["tags"]]
            return cls(body["kind"], tags, body.get("meta", {}))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise InvalidInputError(f"not a tag vocabulary file ({e})", file=str(path)) from e


def seed_vocabulary(kind: str, groups: dict[str, Iterable[str]]) -> TagVocabulary:
    """One tag per distinct value, grouped (e.g. {"occupation": [...], "age": [...]})."""
    tags: list[Tag] = []
    seen: set[str] = set()
    for group, values in groups.items():
        for v in values:
            name = str(v).strip()
            if name and normalise_tag(name) not in seen:
                seen.add(normalise_tag(name))
                tags.append(Tag(name, kind, group, "seed"))
    return TagVocabulary(kind, tags, {"seeded_from": sorted(groups)})


STARTER_ROLES = Path(__file__).with_name("starter_roles.yaml")


def load_role_groups(path: str | Path = STARTER_ROLES) -> dict[str, list[str]]:
    """A role list file: YAML mapping group -> list of role names (see starter_roles.yaml)."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise InvalidInputError(f"cannot read role list: {e}", file=str(p)) from None
    if not isinstance(data, dict) or not data:
        raise InvalidInputError("role list must map a group name to a list of roles", file=str(p))
    for group, values in data.items():
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise InvalidInputError(f"group {group!r} must be a list of non-empty role names", file=str(p), field=str(group))
    return {str(g): list(v) for g, v in data.items()}


@dataclass
class ConsolidationReport:
    candidates: int = 0
    distinct: int = 0
    merged_into_seed: int = 0
    merged_into_new: int = 0
    new_tags: int = 0
    below_min_count: int = 0
    rejected_generic: int = 0
    rejected_other_kind: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def consolidate(
    base: TagVocabulary,
    candidates: Iterable[str],
    embed: Callable[[list[str]], np.ndarray],
    *,
    threshold: float = 0.82,
    min_count: int = 2,
    max_new: int = 40,
    exclude: TagVocabulary | None = None,
) -> tuple[TagVocabulary, ConsolidationReport]:
    """Merge LLM-proposed tags into `base`: a candidate whose embedding is within cosine
    `threshold` of an existing tag becomes its alias; the rest are clustered greedily (most
    frequent first, faiss inner-product search) and kept when proposed at least `min_count` times.
    Candidates close to a tag of `exclude` (the other kind: a genre proposed as a role) and
    generic words (movie, product) are rejected and counted."""
    import faiss

    counts = Counter(normalise_tag(c) for c in candidates if normalise_tag(c))
    report = ConsolidationReport(candidates=sum(counts.values()), distinct=len(counts))
    names = [t.name for t in base.tags]
    aliases: dict[str, set[str]] = {t.name: set(t.aliases) for t in base.tags}
    groups = {t.name: t.group for t in base.tags}
    sources = {t.name: t.source for t in base.tags}
    pending = [c for c, _ in counts.most_common() if base.lookup(c) is None]
    generic = [c for c in pending if c in GENERIC_TAGS]
    report.rejected_generic = len(generic)
    pending = [c for c in pending if c not in GENERIC_TAGS]
    if exclude is not None and len(exclude) and pending:
        other = np.asarray(embed([normalise_tag(n) for n in exclude.names]), dtype=np.float32)
        other /= np.linalg.norm(other, axis=1, keepdims=True).clip(1e-12)
        cand = np.asarray(embed(pending), dtype=np.float32)
        cand /= np.linalg.norm(cand, axis=1, keepdims=True).clip(1e-12)
        clash = [exclude.lookup(c) is not None or float((cand[i] @ other.T).max()) >= threshold for i, c in enumerate(pending)]
        report.rejected_other_kind = int(sum(clash))
        pending = [c for c, x in zip(pending, clash) if not x]
    for c, _ in counts.most_common():
        if base.lookup(c) is not None and base.lookup(c) != c and c != normalise_tag(base.lookup(c)):
            aliases[base.lookup(c)].add(c)
    if not pending:
        return TagVocabulary(base.kind, [Tag(n, base.kind, groups[n], sources[n], tuple(sorted(aliases[n]))) for n in names], base.meta), report
    vecs = np.asarray(embed(pending), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True).clip(1e-12)
    dim = vecs.shape[1]
    index = faiss.IndexFlatIP(dim)
    owners: list[str] = []
    if names:
        base_vecs = np.asarray(embed([normalise_tag(n) for n in names]), dtype=np.float32)
        base_vecs /= np.linalg.norm(base_vecs, axis=1, keepdims=True).clip(1e-12)
        index.add(base_vecs)
        owners.extend(names)
    new_counts: Counter = Counter()
    n_seed = len(owners)
    for cand, v in zip(pending, vecs):
        if index.ntotal:
            sim, idx = index.search(v[None], 1)
            if sim[0, 0] >= threshold:
                owner = owners[int(idx[0, 0])]
                aliases.setdefault(owner, set()).add(cand)
                new_counts[owner] += counts[cand]
                if int(idx[0, 0]) < n_seed:
                    report.merged_into_seed += 1
                else:
                    report.merged_into_new += 1
                continue
        index.add(v[None])
        owners.append(cand)
        aliases.setdefault(cand, set())
        new_counts[cand] += counts[cand]
    kept_new = [o for o in owners[n_seed:] if new_counts[o] >= min_count][:max_new]
    report.below_min_count = len(owners) - n_seed - len(kept_new)
    report.new_tags = len(kept_new)
    tags = [Tag(n, base.kind, groups[n], sources[n], tuple(sorted(aliases[n] - {normalise_tag(n)}))) for n in names]
    tags += [Tag(n, base.kind, "llm", "llm", tuple(sorted(aliases[n] - {n}))) for n in kept_new]
    meta = {**base.meta, "consolidation": {**report.to_dict(), "threshold": threshold, "min_count": min_count}}
    return TagVocabulary(base.kind, tags, meta), report
