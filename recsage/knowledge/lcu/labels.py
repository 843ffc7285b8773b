"""The comment label schema LCU's LLM fills in, and its fixed numeric layout.

One schema serves three readers: the teacher prompt (a JSON schema with enums, grammar-constrained
where the backend can), the student (one classifier head per field) and the engagement model
(a fixed-width vector per comment). The layout is versioned with the topic vocabulary, so a
vector written by one run means the same thing to the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsage.core.errors import InvalidInputError

SCHEMA_VERSION = "1"
# Categorical fields, their values in layout order. "informative": 0 nothing new, 1 some, 2 specific
# useful information; "relevance" to the content item: 0 off-topic, 1 loosely related, 2 on-topic.
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "kind": ("question", "answer", "opinion", "experience", "other"),
    "sentiment": ("negative", "neutral", "positive"),
    "stance": ("agrees", "disagrees", "neutral"),
    "informative": ("0", "1", "2"),
    "relevance": ("0", "1", "2"),
    "humor": ("false", "true"),
}
# Topic vocabulary for college-admissions threads (r/ApplyingToCollege); another domain passes its own.
COLLEGE_TOPICS: tuple[str, ...] = (
    "essays", "test scores", "grades and courses", "extracurriculars", "financial aid", "college choice",
    "admission results", "application process", "majors and careers", "recommendations", "stress and feelings", "other",
)
COLLEGE_TOPICS_VERSION = "a2c-1"
MAX_TOPICS = 2


@dataclass(frozen=True)
class LabelLayout:
    """Where each label lives in a comment's vector: one-hot blocks per field, then topic multi-hot."""

    topics: tuple[str, ...] = COLLEGE_TOPICS
    topics_version: str = COLLEGE_TOPICS_VERSION

    @property
    def version(self) -> str:
        return f"labels@{SCHEMA_VERSION}+topics@{self.topics_version}"

    @property
    def names(self) -> list[str]:
        return [f"{f}={v}" for f, vals in CATEGORICAL.items() for v in vals] + [f"topic={t}" for t in self.topics]

    @property
    def width(self) -> int:
        return len(self.names)

    def json_schema(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "kind": {"type": "string", "enum": list(CATEGORICAL["kind"])},
            "sentiment": {"type": "string", "enum": list(CATEGORICAL["sentiment"])},
            "stance": {"type": "string", "enum": list(CATEGORICAL["stance"])},
            "informative": {"type": "integer", "enum": [0, 1, 2]},
            "humor": {"type": "boolean"},
            "relevance": {"type": "integer", "enum": [0, 1, 2]},
            "topics": {"type": "array", "items": {"type": "string", "enum": list(self.topics)}, "minItems": 1, "maxItems": MAX_TOPICS},
        }
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}

    def normalise(self, label: Mapping[str, Any], *, record: int | str | None = None) -> dict[str, Any]:
        """A validated label dict with string values for the categorical fields (raises on anything else)."""
        out: dict[str, Any] = {}
        for f, vals in CATEGORICAL.items():
            if f not in label:
                raise InvalidInputError("label is missing a field", record=record, field=f)
            v = label[f]
            v = str(v).lower() if isinstance(v, bool) else str(v)
            if v not in vals:
                raise InvalidInputError(f"{v!r} is not one of {list(vals)}", record=record, field=f)
            out[f] = v
        topics = [str(t) for t in (label.get("topics") or [])]
        unknown = [t for t in topics if t not in self.topics]
        if unknown:
            raise InvalidInputError(f"topics {unknown} are not in the vocabulary {self.topics_version}", record=record, field="topics")
        out["topics"] = list(dict.fromkeys(topics))[:MAX_TOPICS]
        return out

    def vector(self, label: Mapping[str, Any]) -> np.ndarray:
        """One-hot / multi-hot encoding of a normalised label."""
        v = np.zeros(self.width, dtype=np.float32)
        offset = 0
        for f, vals in CATEGORICAL.items():
            v[offset + vals.index(str(label[f]))] = 1.0
            offset += len(vals)
        for t in label.get("topics", []):
            v[offset + self.topics.index(t)] = 1.0
        return v

    def vectors(self, labels: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.stack([self.vector(lab) for lab in labels]) if labels else np.zeros((0, self.width), np.float32)

    def blocks(self) -> dict[str, slice]:
        """Field name → its slice of the vector (topics last)."""
        out, offset = {}, 0
        for f, vals in CATEGORICAL.items():
            out[f] = slice(offset, offset + len(vals))
            offset += len(vals)
        out["topics"] = slice(offset, offset + len(self.topics))
        return out
