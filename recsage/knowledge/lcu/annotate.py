"""Teacher: the LLM reads a comment under its content item and fills in the label schema.

The post and the comment are delimited data (a comment saying "ignore your instructions" is a
comment to label, nothing more); answers are grammar-constrained to the schema where the backend
can and validated always. Comments are sent grouped by content item, so the post — a shared
prompt prefix — stays in llama.cpp's KV cache from one comment to the next.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recsage.core.errors import InvalidInputError, RecsageError
from recsage.knowledge.lcu.labels import CATEGORICAL, LabelLayout
from recsage.llm.base import LLMBackend
from recsage.llm.batch import BatchJob, BatchSummary, EngineConfig
from recsage.llm.prompts import PromptTemplate
from recsage.llm.structured import structured
from recsage.llm.tasks import ChatRequest, SingleRequestTask, parse_or_fail
from recsage.llm.types import GenerationParams

COMMENT_PROMPT = PromptTemplate(
    name="lcu-comment-labels",
    version="2",
    system=(
        "You annotate comments under online posts for a recommender system. For the comment, give:\n"
        "kind: {kinds};\nsentiment: {sentiments};\nstance toward the post: {stances};\n"
        "informative: 0 = nothing new, 1 = some information, 2 = specific, useful information;\n"
        "humor: true if the comment jokes or is sarcastic;\n"
        "relevance to the post: 0 = off-topic, 1 = loosely related, 2 = on-topic;\n"
        "topics: 1-2 from this list only: {topics}.\n"
        "Short thanks or reactions are kind other, informative 0. Examples:\n"
        '"thank you so much!!" -> {{"kind": "other", "sentiment": "positive", "stance": "neutral", "informative": 0, "humor": false, "relevance": 1}}\n'
        '"Did you submit the CSS profile before the deadline?" -> {{"kind": "question", "sentiment": "neutral", "stance": "neutral", "informative": 0, "humor": false, "relevance": 2}}\n'
        '"lol my essay was about my cat and I got in" -> {{"kind": "experience", "sentiment": "positive", "stance": "neutral", "informative": 1, "humor": true, "relevance": 2}}\n'
        '"Take the SAT again, a 1450 is below their 25th percentile." -> {{"kind": "answer", "sentiment": "neutral", "stance": "neutral", "informative": 2, "humor": false, "relevance": 2}}'
    ),
    user="Post:\n{post}\n\nComment:\n{comment}\n\nAnswer with JSON.",
    max_field_chars=700,
)


def post_text(item: dict[str, Any], max_chars: int = 400) -> str:
    title = str(item.get("title") or "").strip()
    body = str(item.get("description") or "").strip()
    return (title + ("\n" + body if body else ""))[:max_chars]


@dataclass
class CommentAnnotator:
    """`annotate(rows)` → one label dict per row (`post`, `comment` text), or a failure with the reason."""

    backend: LLMBackend
    layout: LabelLayout = field(default_factory=LabelLayout)
    max_retries: int = 1
    max_tokens: int = 90

    def __post_init__(self) -> None:
        self._system_fill = {"kinds": ", ".join(CATEGORICAL["kind"]), "sentiments": ", ".join(CATEGORICAL["sentiment"]),
                             "stances": ", ".join(CATEGORICAL["stance"]), "topics": "; ".join(self.layout.topics)}
        self._schema = self.layout.json_schema()

    @property
    def prompt_id(self) -> str:
        return f"{COMMENT_PROMPT.id}+{self.layout.version}"

    def messages(self, post: str, comment: str) -> list[dict[str, str]]:
        msgs = COMMENT_PROMPT.render(post=post, comment=comment)
        msgs[0]["content"] = msgs[0]["content"].format(**self._system_fill)
        return msgs

    def request(self, row: dict[str, Any]) -> ChatRequest:
        text = str(row.get("comment") or "").strip()
        if not text or text in ("[deleted]", "[removed]"):
            raise InvalidInputError("comment has no text to label (empty, [deleted] or [removed])", record=row.get("comment_id"),
                                    field="comment")
        return ChatRequest(self.messages(str(row.get("post") or ""), str(row["comment"])), self._schema,
                           GenerationParams(max_tokens=self.max_tokens))

    def labels(self, value: Any, raw: str) -> dict[str, Any]:
        """A parsed answer as the comment's labels (ok), or the failure saying what is outside the schema."""
        if value is None:
            return {"status": "failed", "error": "LLM output outside the schema: no valid answer", "raw": raw[:300]}
        try:
            return {"status": "ok", **self.layout.normalise(value)}
        except InvalidInputError as e:
            return {"status": "failed", "error": f"LLM output outside the schema: {e}", "raw": raw[:300]}

    def annotate(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = list(rows)
        out: list[dict[str, Any] | None] = [None] * len(rows)
        ready, convs = [], []
        for i, r in enumerate(rows):
            try:
                convs.append(self.request(r).messages)
                ready.append(i)
            except InvalidInputError as e:
                out[i] = {"status": "failed", "error": e.reason}
        results = structured(self.backend, convs, self._schema, GenerationParams(max_tokens=self.max_tokens), max_retries=self.max_retries)
        for i, res in zip(ready, results):
            if not res.ok:
                out[i] = {"status": "failed", "error": f"LLM output outside the schema: {res.error}", "raw": res.raw[:300]}
            else:
                out[i] = self.labels(res.value, res.raw)
        return [o for o in out if o is not None]


def _label_result(r: dict[str, Any]) -> dict[str, Any]:
    """A finished comment's line in the labelling job."""
    if r["status"] != "ok":
        raise RecsageError(f"{r['error']}; raw output: {r.get('raw', '')!r}")
    return {k: v for k, v in r.items() if k != "status"}


@dataclass
class LabelTask(SingleRequestTask):
    """The labelling job as a `PromptTask` (Ray's vLLM / HTTP stages): the annotator's prompt, schema and layout."""

    annotator: CommentAnnotator

    def requests(self, record: dict[str, Any]) -> list[ChatRequest]:
        return [self.annotator.request(record)]

    def finish(self, record: dict[str, Any], index: int, text: str) -> dict[str, Any]:
        value = parse_or_fail(text, self.annotator._schema, prefix="LLM output outside the schema:")
        return _label_result(self.annotator.labels(value, text))


@dataclass
class AnnotationRun:
    labels: pd.DataFrame  # comment_id, status, error, kind, sentiment, ..., topics
    summary: BatchSummary
    meta: dict[str, Any]


def annotate_comments_batch(annotator: CommentAnnotator, rows: pd.DataFrame, out_dir: str | Path, *, progress: bool = True,
                            retry_failed: bool = False, engine: EngineConfig | None = None, stage: Any = None) -> AnnotationRun:
    """Resumable: one JSONL line per finished comment under out_dir/parts; a kill loses nothing."""
    if "comment_id" not in rows or "comment" not in rows:
        raise InvalidInputError("rows need 'comment_id' and 'comment' (and 'post') columns", field="comment_id")
    t0 = time.perf_counter()

    def one(rec: dict[str, Any]) -> dict[str, Any]:
        return _label_result(annotator.annotate([rec])[0])

    job = BatchJob(out_dir, one, id_field="comment_id", desc="label comments", progress=progress, retry_failed=retry_failed,
                   engine=engine, task=LabelTask(annotator), stage=stage)
    summary = job.run((r for r in rows.to_dict("records")), total=len(rows))
    meta = {"component": "lcu.CommentAnnotator", "model": annotator.backend.model_id, "prompt": annotator.prompt_id,
            "layout": annotator.layout.version, "seconds": round(time.perf_counter() - t0, 2),
            "comments_per_minute": round(60 * summary.throughput, 2)}
    return AnnotationRun(read_labels(out_dir), summary, meta)


def read_labels(out_dir: str | Path) -> pd.DataFrame:
    """The labels a (possibly still running) annotation job has written so far."""
    frame = BatchJob(out_dir, lambda r: r).to_frame()
    if not len(frame):
        return pd.DataFrame(columns=["comment_id", "status", "error", *CATEGORICAL, "topics"])
    frame = frame.rename(columns={"id": "comment_id"})
    if "topics" in frame:
        frame["topics"] = frame["topics"].apply(lambda v: list(v) if isinstance(v, list) else [])
    return frame
