"""Filters applied before ranking. Every rejected candidate keeps its reasons (one per failed filter)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")
_COMMON_CAPS = {"you", "your", "this", "these", "the", "a", "an", "how", "why", "what", "when", "who", "get", "meet", "here",
                "don't", "still", "do", "is", "are", "it", "its", "it's", "we", "our", "my", "i", "she", "he", "they", "new",
                "read", "see", "watch", "keep", "save", "make", "start", "stop", "try", "find", "never", "every", "one"}


@dataclass(frozen=True)
class PushConstraints:
    max_chars: int = 90
    min_chars: int = 15
    banned_words: tuple[str, ...] = ()
    language: str = "English"
    duplicate_threshold: float = 0.92  # cosine: above this, a later candidate is a near-duplicate
    min_item_similarity: float = 0.15  # cosine between copy and item text: below, the copy is off-topic

    def __post_init__(self) -> None:
        if self.max_chars < self.min_chars or self.max_chars <= 0:
            from recsage.core.errors import InvalidInputError

            raise InvalidInputError(f"max_chars ({self.max_chars}) must be positive and >= min_chars ({self.min_chars})", field="max_chars")


@dataclass
class FilteredCandidate:
    text: str
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.reasons


def length_reasons(text: str, c: PushConstraints) -> list[str]:
    n = len(text)
    if n > c.max_chars:
        return [f"length: {n} chars > max {c.max_chars}"]
    if n < c.min_chars:
        return [f"length: {n} chars < min {c.min_chars}"]
    return []


_DANGLING = {"and", "or", "but", "the", "a", "an", "with", "for", "to", "of", "in", "on", "at", "by", "your", "our", "from", "that", "which"}


def unfinished_reasons(text: str) -> list[str]:
    """Copy cut mid-sentence (a trailing comma, dash or connective): whole sentences only."""
    t = text.rstrip()
    if not t:
        return []
    last = t.split()[-1].lower().strip("\"'")
    if t[-1] in ",;:-–—(&/" or last in _DANGLING:
        return [f"unfinished: ends with {t.split()[-1]!r}"]
    return []


# claims that need support in the item text: the phrase is flagged when none of its evidence words
# appears there (e.g. "in seconds" needs "second"/"instant"/"fast" in the item text)
_CLAIMS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"\bin (?:mere |just )?(?:seconds|minutes|no time|an instant)\b", re.I), ("second", "minute", "instant", "fast", "quick", "rapid")),
    (re.compile(r"\bsaves? (?:you )?(?:hours|days|time|money|a fortune)\b", re.I), ("save", "saving", "hour", "time-saving", "cheap", "price")),
    (re.compile(r"\b(?:guaranteed|guarantee|clinically proven|proven|certified|award[- ]winning|best[- ]selling|#1|number one)\b", re.I),
     ("guarantee", "proven", "certified", "award", "best-selling", "bestselling", "#1")),
    (re.compile(r"\b(?:free shipping|lifetime|forever|never (?:fails|breaks|wears))\b", re.I), ("shipping", "lifetime", "forever", "warranty")),
    (re.compile(r"\b(?:\d+\s*%|percent) (?:off|more|less|faster|better)\b", re.I), ("%", "percent")),
)


def invented_claims(text: str, source: str) -> list[str]:
    """Claim phrases (speed, savings, guarantees, superlatives) the item text gives no evidence for."""
    src = source.lower()
    return [m.group(0) for pattern, evidence in _CLAIMS for m in pattern.finditer(text) if not any(e in src for e in evidence)]


def banned_reasons(text: str, banned: Sequence[str]) -> list[str]:
    hits = [w for w in banned if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE)]
    return [f"banned: {', '.join(hits)}"] if hits else []


def unsupported_claims(text: str, source: str) -> list[str]:
    """Numbers and proper names in the copy that the item text never mentions (invented facts)."""
    src = source.lower()
    src_numbers = set(_NUMBER.findall(source))
    missing = [n for n in _NUMBER.findall(text) if n not in src_numbers]
    words = _WORD.findall(text)
    for i, w in enumerate(words):
        if i > 0 and w[0].isupper() and w.lower() not in _COMMON_CAPS and w.lower() not in src:
            missing.append(w)
    return missing


def filter_candidates(
    candidates: Sequence[str],
    item_text: str,
    constraints: PushConstraints,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> list[FilteredCandidate]:
    """Length, banned terms, faithfulness (entity/number overlap + embedding similarity to the
    item), then near-duplicates among the survivors, in input order."""
    out = []
    for text in candidates:
        t = " ".join(str(text).split())
        fc = FilteredCandidate(t)
        if not t:
            fc.reasons.append("empty")
        fc.reasons += length_reasons(t, constraints)
        fc.reasons += banned_reasons(t, constraints.banned_words)
        fc.reasons += unfinished_reasons(t)
        claims = unsupported_claims(t, item_text) + invented_claims(t, item_text)
        if claims:
            fc.reasons.append(f"faithfulness: not in item text: {', '.join(dict.fromkeys(claims))}")
        out.append(fc)
    if embed is not None and out:
        vecs = np.asarray(embed([item_text] + [c.text or " " for c in out]), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True).clip(1e-12)
        item_vec, cand = vecs[0], vecs[1:]
        kept: list[int] = []
        for i, fc in enumerate(out):
            sim = float(cand[i] @ item_vec)
            if sim < constraints.min_item_similarity:
                fc.reasons.append(f"faithfulness: similarity to item {sim:.2f} < {constraints.min_item_similarity}")
            if fc.passed:
                dup = [j for j in kept if float(cand[i] @ cand[j]) >= constraints.duplicate_threshold]
                if dup:
                    fc.reasons.append(f"duplicate: of candidate {dup[0]}")
                else:
                    kept.append(i)
    else:
        seen: dict[str, int] = {}
        for i, fc in enumerate(out):
            key = fc.text.lower()
            if fc.passed and key in seen:
                fc.reasons.append(f"duplicate: of candidate {seen[key]}")
            elif fc.passed:
                seen[key] = i
    return out


def reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]
