"""LLM tagging: propose new tags, then tag each item within the vocabulary.

Items become text through `item_prompt_text`; the text is delimited data, and answers are
schema-validated with enum-restricted tag lists (grammar-constrained where the backend can),
so the model cannot invent tags and injected text cannot change the output shape.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError, RecsageError
from recsage.knowledge.tagcf.vocab import TagVocabulary, normalise_tag
from recsage.llm.base import LLMBackend
from recsage.llm.batch import BatchJob, BatchSummary, EngineConfig
from recsage.llm.prompts import PromptTemplate
from recsage.llm.structured import structured
from recsage.llm.tasks import ChatRequest, SingleRequestTask, parse_or_fail
from recsage.llm.types import GenerationParams

TAG_PROMPT = PromptTemplate(
    name="tagcf-item-tags",
    version="1",
    system=(
        "You label catalogue items for a recommender. Topics say what the item is about. Roles say which kinds of "
        "people (occupation, life stage, gender, interests) typically choose it.\n"
        "Allowed topics: {topics}\nAllowed roles: {roles}\n"
        "Pick 1-3 topics and 1-4 roles only from these lists, and a confidence between 0 and 1."
    ),
    user="Item:\n{item}\n\nAnswer with JSON: topics, roles, confidence.",
)

PROPOSE_PROMPT = PromptTemplate(
    name="tagcf-propose-tags",
    version="1",
    system=(
        "You build tag vocabularies for a recommender. For the items given, propose short {kind} tags "
        "(1-3 words each). {kind_help}"
    ),
    user="Items:\n{items}\n\nAnswer with JSON: tags (a list of up to 8 short tags).",
)
KIND_HELP = {
    "topic": "A topic says what an item is about (subject, genre, use).",
    "role": "A role is a kind of person who would choose these items: an occupation, life stage or interest.",
}


@dataclass(frozen=True)
class ItemTags:
    item_id: int
    topics: tuple[str, ...]
    roles: tuple[str, ...]
    confidence: float
    status: str = "ok"  # ok | failed
    error: str | None = None
    raw: str | None = None

    def to_record(self) -> dict[str, Any]:
        d = asdict(self)
        d["topics"], d["roles"] = list(self.topics), list(self.roles)
        return d


def item_prompt_text(row: dict[str, Any], max_chars: int = 600) -> str:
    """Title plus whatever the catalogue has (year/genres or brand/categories/description)."""
    title = str(row.get("title") or "").strip()
    if not title:
        raise InvalidInputError("item has no title text to tag", record=row.get("item_id"), field="title")
    parts = [f"Title: {title}"]
    cats = row.get("categories")
    if cats is not None and len(cats):
        parts.append("Categories: " + ", ".join(map(str, list(cats)[:8])))
    for key, label in (("brand", "Brand"), ("release_date", "Released"), ("description", "Description")):
        v = str(row.get(key) or "").strip()
        if v:
            parts.append(f"{label}: {v}")
    return "\n".join(parts)[:max_chars]


def tag_schema(topics: Sequence[str], roles: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "topics": {"type": "array", "items": {"type": "string", "enum": list(topics)}, "minItems": 1, "maxItems": 3},
            "roles": ({"type": "array", "items": {"type": "string", "enum": list(roles)}, "minItems": 1, "maxItems": 4} if roles
                      else {"type": "array", "items": {"type": "string"}, "maxItems": 0}),  # no role vocabulary yet: topics only
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["topics", "roles", "confidence"],
        "additionalProperties": False,
    }


@dataclass
class ItemTagger:
    """`tag(items)` → one `ItemTags` per item; failures are records with the raw output, not raises."""

    backend: LLMBackend
    topics: TagVocabulary
    roles: TagVocabulary
    max_retries: int = 2
    max_tokens: int = 96
    batch_size: int = 4

    def __post_init__(self) -> None:
        if not len(self.topics):
            raise InvalidInputError("the topic vocabulary is empty: nothing to tag items with", field="vocabulary")
        self._schema = tag_schema(self.topics.names, self.roles.names)

    @property
    def prompt_id(self) -> str:
        return f"{TAG_PROMPT.id}+topics@{self.topics.version}+roles@{self.roles.version}"

    def _messages(self, text: str, topics: list[str] | None = None, roles: list[str] | None = None) -> list[dict[str, str]]:
        """The prompt listing `topics` / `roles` (default: the whole vocabularies)."""
        topics = self.topics.names if topics is None else topics
        roles = self.roles.names if roles is None else roles
        msgs = TAG_PROMPT.render(item=text)
        msgs[0]["content"] = msgs[0]["content"].format(topics="; ".join(topics), roles="; ".join(roles) or "(none: leave roles empty)")
        return msgs

    def choices(self, item: dict[str, Any]) -> tuple[list[str], list[str]]:
        """The topics and roles this item may get: its shortlist (`candidate_topics` /
        `candidate_roles`, see `shortlist_tags`) where the record has one, else the vocabularies."""
        ct, cr = item.get("candidate_topics"), item.get("candidate_roles")
        topics = [str(t) for t in (ct if ct is not None else []) if self.topics.lookup(str(t)) == str(t)] or self.topics.names
        roles = [str(r) for r in (cr if cr is not None else []) if self.roles.lookup(str(r)) == str(r)] or self.roles.names
        return list(topics), list(roles)

    def schema_for(self, item: dict[str, Any]) -> dict[str, Any]:
        """The answer schema for this item (its shortlist's, or the whole vocabulary's)."""
        if item.get("candidate_topics") is None and item.get("candidate_roles") is None:
            return self._schema
        return tag_schema(*self.choices(item))

    def request(self, item: dict[str, Any]) -> ChatRequest:
        return ChatRequest(self._messages(item_prompt_text(item), *self.choices(item)), self.schema_for(item),
                           GenerationParams(max_tokens=self.max_tokens))

    @staticmethod
    def item_tags(item_id: int, value: dict[str, Any]) -> ItemTags:
        """A schema-valid answer as the item's tags (repeats dropped, order kept)."""
        return ItemTags(item_id, tuple(dict.fromkeys(value["topics"])), tuple(dict.fromkeys(value["roles"])), float(value["confidence"]))

    def tag(self, items: Iterable[dict[str, Any]]) -> list[ItemTags]:
        rows = list(items)
        out: list[ItemTags] = []
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            ready, reqs = [], []
            for r in chunk:
                try:
                    reqs.append(self.request(r))
                    ready.append(r)
                except InvalidInputError as e:
                    out.append(ItemTags(int(r.get("item_id", -1)), (), (), 0.0, "failed", str(e)))
            results = [None] * len(reqs)
            by_schema: dict[str, list[int]] = {}  # shortlisted items each have their own schema
            for i, req in enumerate(reqs):
                by_schema.setdefault(json.dumps(req.json_schema, sort_keys=True), []).append(i)
            for idx in by_schema.values():
                got = structured(self.backend, [reqs[i].messages for i in idx], reqs[idx[0]].json_schema,
                                 GenerationParams(max_tokens=self.max_tokens), max_retries=self.max_retries)
                for i, res in zip(idx, got):
                    results[i] = res
            for r, res in zip(ready, results):
                if res.ok:
                    out.append(self.item_tags(int(r["item_id"]), res.value))
                else:
                    out.append(ItemTags(int(r["item_id"]), (), (), 0.0, "failed", res.error, res.raw))
        order = {int(r.get("item_id", -1)): i for i, r in enumerate(rows)}
        return sorted(out, key=lambda t: order.get(t.item_id, 0))


def propose_tags(backend: LLMBackend, items: Sequence[dict[str, Any]], kind: str, *, per_call: int = 8, max_calls: int = 10) -> list[str]:
    """Free-form tag proposals from groups of items (input to `consolidate`, never used raw)."""
    if kind not in KIND_HELP:
        raise InvalidInputError(f"kind must be one of {sorted(KIND_HELP)}", field="kind")
    schema = {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 8}},
        "required": ["tags"],
    }
    convs = []
    for start in range(0, min(len(items), per_call * max_calls), per_call):
        group = items[start : start + per_call]
        lines = "\n".join(f"- {item_prompt_text(r, 160).splitlines()[0][7:]}" for r in group)
        msgs = PROPOSE_PROMPT.render(items=lines)
        msgs[0]["content"] = msgs[0]["content"].format(kind=kind, kind_help=KIND_HELP[kind])
        convs.append(msgs)
    # small models echo titles and the prompt's own words back as "tags": never vocabulary
    titles = " | ".join(normalise_tag(r.get("title", "")) for r in items)
    echo = {"topic", "role", "tag", "tags", "item", "items"}
    help_text = KIND_HELP[kind].lower()
    proposals: list[str] = []
    for res in structured(backend, convs, schema, GenerationParams(max_tokens=120)):
        if res.ok:
            for t in res.value["tags"]:
                t = normalise_tag(t)
                if 0 < len(t) <= 40 and t not in echo and t not in titles and t not in help_text:
                    proposals.append(t)
    return proposals


def _tag_result(t: ItemTags) -> dict[str, Any]:
    """A finished item's line in the tagging job."""
    if t.status != "ok":
        raise RecsageError(f"tagging failed: {t.error}; raw output: {(t.raw or '')[:300]!r}")
    return {"topics": list(t.topics), "roles": list(t.roles), "confidence": t.confidence}


@dataclass
class TagTask(SingleRequestTask):
    """The tagging job as a `PromptTask` (Ray's vLLM / HTTP stages): the tagger's prompt and schema."""

    tagger: ItemTagger

    def requests(self, record: dict[str, Any]) -> list[ChatRequest]:
        return [self.tagger.request(record)]

    def finish(self, record: dict[str, Any], index: int, text: str) -> dict[str, Any]:
        value = parse_or_fail(text, self.tagger.schema_for(record), prefix="tagging failed: LLM output")
        return _tag_result(self.tagger.item_tags(int(record["item_id"]), value))


@dataclass
class TaggingRun:
    tags: pd.DataFrame
    summary: BatchSummary
    meta: dict[str, Any] = field(default_factory=dict)


def tag_items_batch(tagger: ItemTagger, items: pd.DataFrame, out_dir: str | Path, *, progress: bool = True, retry_failed: bool = False,
                    engine: EngineConfig | None = None, stage: Any = None) -> TaggingRun:
    """Resumable tagging: one JSONL line per finished item under out_dir/parts (on Ray with
    `engine`; through Ray's vLLM/HTTP stage with `stage`)."""
    t0 = time.perf_counter()

    def one(rec: dict[str, Any]) -> dict[str, Any]:
        return _tag_result(tagger.tag([rec])[0])

    job = BatchJob(out_dir, one, id_field="item_id", desc="tag items", progress=progress, retry_failed=retry_failed, engine=engine,
                   task=TagTask(tagger), stage=stage)
    records = (r for r in items.to_dict("records"))
    summary = job.run(records, total=len(items))
    frame = job.to_frame()
    if len(frame):
        frame = frame.rename(columns={"id": "item_id"})
        frame["item_id"] = frame["item_id"].astype("int64")
        for col in ("topics", "roles"):
            if col not in frame:
                frame[col] = [[] for _ in range(len(frame))]
            frame[col] = frame[col].apply(lambda v: list(v) if isinstance(v, list) else [])
        if "confidence" not in frame:
            frame["confidence"] = 0.0
        frame = frame.sort_values("item_id").reset_index(drop=True)
    meta = {"component": "tagcf.ItemTagger", "model": tagger.backend.model_id, "prompt": tagger.prompt_id, "seconds": round(time.perf_counter() - t0, 2),
            **({"stage": stage.describe()} if stage is not None else {})}
    return TaggingRun(frame, summary, meta)


def shortlist_tags(items: pd.DataFrame, topics: TagVocabulary, roles: TagVocabulary, embed: Any, *, k_topics: int = 12, k_roles: int = 8,
                   seed: int = 0) -> pd.DataFrame:
    """Each item's `k_topics` / `k_roles` tags nearest its text (MiniLM cosine), in an order shuffled
    per item: `candidate_topics`, `candidate_roles` columns for `ItemTagger`.

    Why: shown the whole vocabulary in a fixed order, a small model picks its first entries (5 of
    8 items got exactly the first three topics). A shortlist puts only plausible tags in front of
    it, and a per-item shuffle (seeded by the item id) leaves no position for a bias to latch on."""
    rows = items.to_dict("records")
    texts = []
    for r in rows:
        try:
            texts.append(item_prompt_text(r))
        except InvalidInputError:
            texts.append("")
    x = np.asarray(embed(texts), dtype=np.float32)
    out = items.copy()
    for col, vocab, k in (("candidate_topics", topics, k_topics), ("candidate_roles", roles, k_roles)):
        names = vocab.names
        if not names or k <= 0 or k >= len(names):
            out[col] = [list(names) for _ in rows]
            continue
        v = np.asarray(embed(names), dtype=np.float32)
        sims = _unit(x) @ _unit(v).T
        top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        shuffled = []
        for r, idx in zip(rows, top):
            rng = np.random.default_rng([seed, abs(hash_id(r.get("item_id")))])
            shuffled.append([names[i] for i in rng.permutation(idx)])
        out[col] = shuffled
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def hash_id(value: Any) -> int:
    """A stable integer for any id (Python's `hash` of a string changes per process)."""
    return int(hashlib.sha256(str(value).encode()).hexdigest()[:12], 16)


def tags_from_metadata(items: pd.DataFrame, vocab: TagVocabulary, column: str = "categories") -> pd.DataFrame:
    """Data-derived topic tags (genres / categories) mapped through the vocabulary's aliases."""
    rows = []
    for r in items[["item_id", column]].itertuples(index=False):
        vals = list(r[1]) if r[1] is not None else []
        hits = [vocab.lookup(v) for v in vals]
        rows.append({"item_id": int(r[0]), "topics": list(dict.fromkeys(h for h in hits if h)), "roles": [], "confidence": 1.0, "status": "ok"})
    return pd.DataFrame(rows)


def normalise_tag_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Guarantee list columns (Parquet round trips return numpy arrays)."""
    df = df.copy()
    for col in ("topics", "roles"):
        df[col] = df[col].apply(lambda v: [str(x) for x in v] if v is not None else [])
    return df


__all__ = ["ItemTagger", "ItemTags", "propose_tags", "shortlist_tags", "tag_items_batch", "tags_from_metadata", "item_prompt_text", "tag_schema", "normalise_tag", "normalise_tag_frame"]
