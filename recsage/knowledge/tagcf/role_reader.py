"""The LLM route to user roles (TagCF's user-role identification): the model reads what a user
chose — titles and their topics — and names one role per group from the vocabulary.

The history is delimited data; the answer is schema-constrained to one enum value per group, so
it can neither invent a role nor leave the vocabulary. Runs as a resumable `BatchJob` keyed by
user id, so a labelling run over every user is done once and reused (a benchmark artifact).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recsage.core.errors import InvalidInputError, RecsageError
from recsage.llm.base import LLMBackend
from recsage.llm.batch import BatchJob, BatchSummary, EngineConfig
from recsage.llm.prompts import PromptTemplate
from recsage.llm.structured import structured
from recsage.llm.tasks import ChatRequest, SingleRequestTask, parse_or_fail
from recsage.llm.types import GenerationParams

ROLE_PROMPT = PromptTemplate(
    name="tagcf-user-roles",
    version="1",
    system=(
        "You infer who a person is from the items they chose. For each group, pick the single most likely "
        "value from its allowed list.\n{groups}"
    ),
    user="Items this person chose (most recent first):\n{history}\n\nAnswer with JSON: one value for each group.",
)


def role_schema(groups: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    return {"type": "object", "properties": {g: {"type": "string", "enum": list(v)} for g, v in groups.items()},
            "required": list(groups), "additionalProperties": False}


@dataclass
class RoleReader:
    """`read(histories)` → per user {group: role} or a failure record; `groups` maps each role
    group to its allowed roles (e.g. occupation → 21 occupations)."""

    backend: LLMBackend
    groups: dict[str, list[str]]
    max_items: int = 25
    max_tokens: int = 48
    max_retries: int = 1

    def __post_init__(self) -> None:
        if not self.groups or any(len(v) < 2 for v in self.groups.values()):
            raise InvalidInputError("every role group needs at least two roles to choose from", field="groups")
        self._schema = role_schema(self.groups)
        self._groups_text = "\n".join(f"- {g}: {'; '.join(v)}" for g, v in self.groups.items())

    @property
    def prompt_id(self) -> str:
        return ROLE_PROMPT.id

    def request(self, record: dict[str, Any]) -> ChatRequest:
        items = list(record.get("items") or [])[-self.max_items:][::-1]
        if not items:
            raise InvalidInputError("user has no history to read roles from", record=record.get("user_id"), field="items")
        msgs = ROLE_PROMPT.render(history="\n".join(f"- {t}" for t in items))
        msgs[0]["content"] = msgs[0]["content"].format(groups=self._groups_text)
        return ChatRequest(msgs, self._schema, GenerationParams(max_tokens=self.max_tokens, temperature=0.0))

    def answer(self, value: dict[str, Any]) -> dict[str, str]:
        return {g: str(value[g]) for g in self.groups}

    def read(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for rec in records:
            try:
                req = self.request(rec)
            except InvalidInputError as e:
                out.append({"status": "failed", "error": e.reason})
                continue
            res = structured(self.backend, [req.messages], self._schema, req.params, max_retries=self.max_retries)[0]
            out.append({"status": "ok", **self.answer(res.value)} if res.ok else
                       {"status": "failed", "error": f"LLM output outside the schema: {res.error}", "raw": res.raw[:300]})
        return out


def _role_result(r: dict[str, Any]) -> dict[str, Any]:
    if r["status"] != "ok":
        raise RecsageError(f"{r['error']}; raw output: {r.get('raw', '')!r}")
    return {k: v for k, v in r.items() if k != "status"}


@dataclass
class RoleTask(SingleRequestTask):
    """The role-reading job as a `PromptTask` (Ray's vLLM / HTTP stages)."""

    reader: RoleReader

    def requests(self, record: dict[str, Any]) -> list[ChatRequest]:
        return [self.reader.request(record)]

    def finish(self, record: dict[str, Any], index: int, text: str) -> dict[str, Any]:
        return self.reader.answer(parse_or_fail(text, self.reader._schema))


@dataclass
class RoleReadingRun:
    answers: pd.DataFrame  # user_id, one column per group (None where failed), status, error
    summary: BatchSummary
    meta: dict[str, Any] = field(default_factory=dict)


def read_roles_batch(reader: RoleReader, records: Sequence[dict[str, Any]], out_dir: str | Path, *, progress: bool = True,
                     retry_failed: bool = False, engine: EngineConfig | None = None, stage: Any = None) -> RoleReadingRun:
    """Resumable: one JSONL line per user under out_dir/parts; records are {user_id, items: [text…]}."""
    t0 = time.perf_counter()

    def one(rec: dict[str, Any]) -> dict[str, Any]:
        return _role_result(reader.read([rec])[0])

    job = BatchJob(out_dir, one, id_field="user_id", desc="read user roles", progress=progress, retry_failed=retry_failed, engine=engine,
                   task=RoleTask(reader), stage=stage)
    summary = job.run(iter(records), total=len(records))
    frame = job.to_frame()
    if len(frame):
        frame = frame.rename(columns={"id": "user_id"})
        frame["user_id"] = frame["user_id"].astype("int64")
        for g in reader.groups:
            if g not in frame:
                frame[g] = None
        frame = frame.sort_values("user_id").reset_index(drop=True)
    meta = {"component": "tagcf.RoleReader", "model": reader.backend.model_id, "prompt": reader.prompt_id,
            "groups": {g: len(v) for g, v in reader.groups.items()}, "seconds": round(time.perf_counter() - t0, 2)}
    return RoleReadingRun(frame, summary, meta)
