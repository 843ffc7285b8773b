"""The LLM puts a derived chain into words; the verifier decides what of it is kept.

The facts block (`verify.chain_facts`) is delimited data — titles from a catalogue are content,
never instructions — and the answer is grammar-constrained to three short strings. A verbalised
chain is a `BatchJob` keyed by user id, so a long run resumes after a kill.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recsage.core.errors import RecsageError
from recsage.generation.onereason.chains import Chain
from recsage.generation.onereason.verify import PARTS, ChainVerifier, chain_facts
from recsage.llm.base import LLMBackend
from recsage.llm.batch import BatchJob, EngineConfig
from recsage.llm.prompts import PromptTemplate
from recsage.llm.structured import structured
from recsage.llm.tasks import ChatRequest, SingleRequestTask, parse_or_fail
from recsage.llm.types import GenerationParams

VERBALISE_PROMPT = PromptTemplate(
    name="onereason-verbalise",
    version="1",
    system=(
        "You explain a shopper's interests to a recommender engineer, in plain English, using only the facts given. "
        "Never add items, numbers, categories or trends that are not in the facts. Quote item titles in double quotes, exactly.\n"
        "induction: one or two sentences on the interests the history groups into, with their counts.\n"
        "abduction: one or two sentences on how each interest behaves (long-term, rising, periodic or one-off).\n"
        "deduction: one sentence on which interest the next item most likely serves."
    ),
    user="Facts:\n{facts}\n\nAnswer with JSON.",
    max_field_chars=1500,
)
SCHEMA = {"type": "object", "properties": {p: {"type": "string", "maxLength": 260} for p in PARTS}, "required": list(PARTS),
          "additionalProperties": False}


@dataclass
class ChainVerbaliser:
    backend: LLMBackend
    verifier: ChainVerifier
    titles: Mapping[int, str]
    max_tokens: int = 220

    @property
    def prompt_id(self) -> str:
        return VERBALISE_PROMPT.id

    def request(self, chain: Chain, *, hindsight: bool = False) -> ChatRequest:
        return ChatRequest(VERBALISE_PROMPT.render(facts=chain_facts(chain, self.titles, hindsight=hindsight)), SCHEMA,
                           GenerationParams(max_tokens=self.max_tokens, temperature=0.0))

    def verified(self, chain: Chain, value: dict[str, Any], *, hindsight: bool = False) -> dict[str, Any]:
        """A schema-valid answer checked against the chain: what is kept, and why the rest is not."""
        v = self.verifier.verify(value, chain, hindsight=hindsight)
        return {"user_id": chain.user_id, "status": v.status, "text": v.text, "problems": v.problems, "sentences": v.sentences,
                "llm_text": {p: str(value.get(p, "")) for p in PARTS}, "hindsight": hindsight}

    def verbalise(self, chains: Sequence[Chain], *, hindsight: bool = False) -> list[dict[str, Any]]:
        """One record per chain: status (verified | repaired | rejected | failed), the kept text,
        the problems found, the LLM's raw answer, and the `hindsight` flag."""
        convs = [self.request(c, hindsight=hindsight).messages for c in chains]
        results = structured(self.backend, convs, SCHEMA, GenerationParams(max_tokens=self.max_tokens, temperature=0.0), max_retries=1)
        out = []
        for chain, res in zip(chains, results):
            if not res.ok:
                out.append({"user_id": chain.user_id, "status": "failed", "error": f"LLM output outside the schema: {res.error}", "raw": res.raw[:400],
                            "hindsight": hindsight})
            else:
                out.append(self.verified(chain, res.value, hindsight=hindsight))
        return out


def _chain_result(r: dict[str, Any]) -> dict[str, Any]:
    """A finished chain's line in the verbalising job."""
    if r["status"] == "failed":
        raise RecsageError(f"{r['error']}; raw output: {r.get('raw', '')!r}")
    return {k: v for k, v in r.items() if k != "user_id"}


@dataclass
class VerbaliseTask(SingleRequestTask):
    """The verbalising job as a `PromptTask` (Ray's vLLM / HTTP stages); records carry their chain."""

    verbaliser: ChainVerbaliser
    hindsight: bool = False

    def requests(self, record: dict[str, Any]) -> list[ChatRequest]:
        return [self.verbaliser.request(record["chain"], hindsight=self.hindsight)]

    def finish(self, record: dict[str, Any], index: int, text: str) -> dict[str, Any]:
        value = parse_or_fail(text, SCHEMA, prefix="LLM output outside the schema:", raw_chars=400)
        return _chain_result(self.verbaliser.verified(record["chain"], value, hindsight=self.hindsight))


def verbalise_chains_batch(verbaliser: ChainVerbaliser, chains: Sequence[Chain], out_dir: str | Path, *, hindsight: bool = False,
                           progress: bool = True, engine: EngineConfig | None = None, stage: Any = None) -> dict[str, Any]:
    """Resumable: one JSONL line per finished chain under out_dir/parts. Returns the run's meta
    (model, prompt, counts by status, chains per minute)."""
    t0 = time.perf_counter()

    def one(rec: dict[str, Any]) -> dict[str, Any]:
        return _chain_result(verbaliser.verbalise([rec["chain"]], hindsight=hindsight)[0])

    job = BatchJob(out_dir, one, id_field="user_id", desc="verbalise chains", progress=progress, engine=engine,
                   task=VerbaliseTask(verbaliser, hindsight), stage=stage)
    # each record carries its chain, so a Ray worker needs nothing but its own record
    summary = job.run(({"user_id": c.user_id, "chain": c} for c in chains), total=len(chains))
    frame = read_verbalised(out_dir)
    statuses = Counter(frame["status"])
    return {"component": "onereason.ChainVerbaliser", "model": verbaliser.backend.model_id, "prompt": verbaliser.prompt_id,
            "hindsight": hindsight, "statuses": dict(statuses), "new": summary.new_ok + summary.new_failed,
            "seconds": round(time.perf_counter() - t0, 2), "chains_per_minute": round(60 * summary.throughput, 2)}


def read_verbalised(out_dir: str | Path) -> pd.DataFrame:
    """Verbalised chains written so far: user_id, status (verified | repaired | rejected | failed), text, problems."""
    frame = BatchJob(out_dir, lambda r: r).to_frame()
    if not len(frame):
        return pd.DataFrame(columns=["user_id", "status", "text", "problems"])
    # a finished line's result carries the verifier's verdict as its status; a failed line keeps "failed"
    return frame.rename(columns={"id": "user_id"})
