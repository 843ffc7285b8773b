"""PushGen: N style-controlled candidates per (item, style), filtered, ranked by a reward model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from recsage.core.errors import InvalidInputError, RecsageError
from recsage.generation.pushgen.filters import FilteredCandidate, PushConstraints, filter_candidates
from recsage.generation.pushgen.styles import Style, StyleLibrary
from recsage.llm.base import LLMBackend
from recsage.llm.prompts import PromptTemplate
from recsage.llm.structured import structured
from recsage.llm.tasks import BuiltOnce, ChatRequest, parse_or_fail
from recsage.llm.types import GenerationParams

PUSH_PROMPT = PromptTemplate(
    name="pushgen-candidates",
    version="1",
    system=(
        "You write short push-notification copy that makes people open an item.\n"
        "Style: {style} - {instructions}\nExamples of this style (for other items):\n{examples}\n"
        "Rules: each candidate is one line of at most {max_chars} characters, written in {language}; "
        "state only facts found in the item text; no hashtags or emoji{banned}."
    ),
    user="Item:\n{item}\n\nWrite {n} different candidates in this style. Answer with JSON: candidates (a list of strings).",
)


GRAMMAR_MARGIN = 20  # characters the grammar allows beyond max_chars (see `schema`)

RETRY_NOTE = (
    "None of those can be sent:\n{rejected}\nWrite {n} new candidates in the same style. Each must be one or two whole sentences of "
    "at most {max_chars} characters (shorter is fine) and state only facts found in the item text. Answer with JSON: candidates."
)


@dataclass
class PushResult:
    item_id: str
    style: str
    candidates: list[dict[str, Any]]
    chosen: str | None
    chosen_score: float | None
    model: str
    prompt: str
    library: str
    reward_model: str
    status: str = "ok"  # ok | no_candidate_passed
    tokens: int = 0

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PushCopyGenerator:
    backend: LLMBackend
    library: StyleLibrary
    score: Callable[[list[str]], np.ndarray] | None = None  # reward model; None ranks by input order
    embed: Callable[[list[str]], np.ndarray] | None = None  # for near-duplicate and similarity filters
    n: int = 8
    temperature: float = 0.8
    reward_name: str = "none"
    max_item_chars: int = 1200
    seed: int = 0
    retries: int = 1  # rounds of "write new ones" for a style whose candidates were all rejected

    def __post_init__(self) -> None:
        if self.n < 1 or self.n > 32:
            raise InvalidInputError(f"n must be in 1..32, got {self.n}", field="n")
        if self.retries < 0 or self.retries > 5:
            raise InvalidInputError(f"retries must be in 0..5, got {self.retries}", field="retries")

    @property
    def prompt_id(self) -> str:
        return self.prompt_id_for(self.library)

    @staticmethod
    def prompt_id_for(library: StyleLibrary) -> str:
        """Known before a generator exists (a Ray job builds its generators inside the workers)."""
        return f"{PUSH_PROMPT.id}+styles@{library.fingerprint}"

    def messages(self, item_text: str, style: Style, constraints: PushConstraints) -> list[dict[str, str]]:
        msgs = PUSH_PROMPT.render(item=item_text[: self.max_item_chars], n=self.n)
        banned = f"; never use these words: {', '.join(constraints.banned_words)}" if constraints.banned_words else ""
        msgs[0]["content"] = msgs[0]["content"].format(
            style=style.name.replace("_", " "), instructions=style.instructions, examples="\n".join(f"- {e}" for e in style.examples),
            max_chars=constraints.max_chars, language=constraints.language, banned=banned)
        # `n` is ours, not item data: show it bare
        msgs[1]["content"] = msgs[1]["content"].replace(f'<data name="n">\n{self.n}\n</data>', str(self.n))
        return msgs

    def schema(self, constraints: PushConstraints) -> dict[str, Any]:
        return {
            "type": "object",
            # the grammar's bound sits above the limit on purpose: at max_chars it cut copy mid-sentence
            # (12 of 27 chosen copies were exactly 90 characters). A string the grammar cuts is now
            # longer than max_chars, so the length filter always rejects it, with its reason, instead
            # of a truncated sentence passing. (At 2× the limit the 0.5B model rambled past its token
            # budget into invalid JSON.)
            "properties": {"candidates": {"type": "array", "items": {"type": "string", "maxLength": constraints.max_chars + GRAMMAR_MARGIN},
                                          "minItems": 1, "maxItems": self.n}},
            "required": ["candidates"],
            "additionalProperties": False,
        }

    def requests(self, item_id: str, item_text: str, styles: Sequence[str], constraints: PushConstraints) -> list[ChatRequest]:
        """One chat per style (in the order of `styles`), each asking for `n` candidates."""
        if not str(item_text).strip():
            raise InvalidInputError("item has no text to write copy for", record=item_id, field="text")
        params = GenerationParams(max_tokens=40 + self.n * ((constraints.max_chars + GRAMMAR_MARGIN) // 3 + 8), temperature=self.temperature, seed=self.seed)
        schema = self.schema(constraints)
        return [ChatRequest(self.messages(item_text, s, constraints), schema, params) for s in self.library.select(list(styles))]

    def generate(self, item_id: str, item_text: str, styles: Sequence[str], constraints: PushConstraints | None = None) -> list[PushResult]:
        """One result per style; a style whose candidates all fail still returns (status says so).

        The filters reject rather than repair (a copy cut at the limit reads as cut), so a style
        whose candidates were all rejected is asked again, up to `retries` times, with the
        rejected texts and their reasons; every candidate of every round stays in the result."""
        constraints = constraints or PushConstraints()
        reqs = self.requests(item_id, item_text, styles, constraints)
        chosen_styles = self.library.select(list(styles))
        convs = [list(r.messages) for r in reqs]
        texts: list[list[str]] = [[] for _ in reqs]
        tokens = [0] * len(reqs)
        results: list[PushResult | None] = [None] * len(reqs)
        todo = list(range(len(reqs)))
        for round_ in range(self.retries + 1):
            answers = structured(self.backend, [convs[i] for i in todo], reqs[0].json_schema, reqs[0].params)
            again = []
            for i, ans in zip(todo, answers):
                if not ans.ok:
                    if texts[i]:  # an earlier round's candidates stand
                        continue
                    raise RecsageError(f"no valid candidates for style {chosen_styles[i].name}: {ans.error}; raw output: {ans.raw[:200]!r}")
                texts[i] += [t for t in ans.value["candidates"] if t not in texts[i]]
                tokens[i] += ans.tokens
                results[i] = self.rank(item_id, item_text, chosen_styles[i].name, texts[i], constraints, tokens=tokens[i])
                if results[i].chosen is None and round_ < self.retries:
                    convs[i] = convs[i] + self.retry_messages(ans.value["candidates"], results[i], constraints)
                    again.append(i)
            todo = again
            if not todo:
                break
        return [r for r in results if r is not None]

    def retry_messages(self, answered: Sequence[str], result: PushResult, constraints: PushConstraints) -> list[dict[str, str]]:
        """The model's own answer, then why each of its candidates was rejected (its text delimited as data)."""
        import json

        reasons = {c["text"]: c["reasons"] for c in result.candidates}
        rejected = "\n".join(f'<data name="candidate">{t}</data> rejected: {"; ".join(reasons.get(t, [])) or "duplicate"}' for t in answered)
        return [{"role": "assistant", "content": json.dumps({"candidates": list(answered)}, ensure_ascii=False)},
                {"role": "user", "content": RETRY_NOTE.format(rejected=rejected, n=self.n, max_chars=constraints.max_chars)}]

    def rank(self, item_id: str, item_text: str, style: str, texts: Sequence[str], constraints: PushConstraints, tokens: int = 0) -> PushResult:
        filtered: list[FilteredCandidate] = filter_candidates(texts, item_text, constraints, self.embed)
        passing = [c.text for c in filtered if c.passed]
        scores: dict[str, float] = {}
        if passing:
            raw = self.score(passing) if self.score is not None else -np.arange(len(passing), dtype=np.float64)
            scores = {t: float(s) for t, s in zip(passing, raw)}
        cands = [{"text": c.text, "passed": c.passed, "reasons": c.reasons, "score": scores.get(c.text) if c.passed else None} for c in filtered]
        best = max(passing, key=lambda t: scores[t]) if passing else None
        return PushResult(str(item_id), style, cands, best, scores.get(best) if best else None, self.backend.model_id, self.prompt_id,
                          self.library.fingerprint, self.reward_name, "ok" if best else "no_candidate_passed", tokens)


@dataclass
class PushTask:
    """The push job as a `PromptTask` (Ray's vLLM / HTTP stages): one chat per style; each answer
    is filtered and reward-ranked next to the generation by a generator built once per worker
    (`ranker`: its reward and embedding models are loaded there, not pickled across). A stage
    runs one request per prompt, so this path has no retry round: a style whose candidates were
    all rejected stays `no_candidate_passed` (rerun those items on the local engine to retry)."""

    prompts: PushCopyGenerator  # for prompts and schema only: no reward or embedding model needed
    ranker: BuiltOnce  # → a PushCopyGenerator with its reward and embedding models
    styles: list[str]
    constraints: PushConstraints

    def requests(self, record: dict[str, Any]) -> list[ChatRequest]:
        return self.prompts.requests(record["id"], record["text"], self.styles, self.constraints)

    def finish(self, record: dict[str, Any], index: int, text: str) -> dict[str, Any]:
        style = self.prompts.library.select(self.styles)[index].name
        value = parse_or_fail(text, self.prompts.schema(self.constraints), prefix=f"no valid candidates for style {style}: LLM output",
                              raw_chars=200)
        return self.ranker.get().rank(record["id"], record["text"], style, value["candidates"], self.constraints).to_record()

    def combine(self, record: dict[str, Any], parts: list[Any]) -> dict[str, Any]:
        return {"results": parts}


@dataclass
class StyleClassifier:
    """Nearest-centroid style classifier on sentence embeddings of each style's examples and
    instructions: measures whether generated copy matches the style that was asked for."""

    embed: Callable[[list[str]], np.ndarray]
    names_: list[str] = field(default_factory=list)

    def fit(self, library: StyleLibrary) -> StyleClassifier:
        cents = []
        for s in library.styles.values():
            v = np.asarray(self.embed(list(s.examples) + [s.instructions]), dtype=np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)
            c = v.mean(axis=0)
            cents.append(c / max(np.linalg.norm(c), 1e-12))
        self.names_ = list(library.styles)
        self.centroids_ = np.stack(cents)
        return self

    def predict(self, texts: Sequence[str]) -> list[str]:
        if not texts:
            return []
        v = np.asarray(self.embed(list(texts)), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)
        return [self.names_[i] for i in (v @ self.centroids_.T).argmax(axis=1)]

    def adherence(self, texts: Sequence[str], requested: Sequence[str]) -> float:
        pred = self.predict(texts)
        return float(np.mean([p == r for p, r in zip(pred, requested)])) if pred else float("nan")


def marker_adherence(library: StyleLibrary, texts: Sequence[str], requested: Sequence[str]) -> float:
    """Share of copies whose requested style's surface markers match (styles without markers are skipped).
    Embeddings mostly see *what* a copy is about; markers see *how* it is written — report both."""
    hits = [library.get(r).matches(t) for t, r in zip(texts, requested)]
    hits = [h for h in hits if h is not None]
    return float(np.mean(hits)) if hits else float("nan")
