"""Row-level validation shared by all loaders.

A loader either raises `InvalidInputError` at the first bad record (default), or — when the user
asked for `skip_bad` — skips it and records why in a `ValidationReport`, which is written next to
the prepared data. Nothing is ever dropped without being counted.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsage.core.errors import InvalidInputError


@dataclass
class ValidationReport:
    """Skipped records and their reasons (kept as the first examples plus full counts)."""

    skip_bad: bool = False
    max_examples: int = 50
    n_skipped: int = 0
    reasons: Counter = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, error: InvalidInputError) -> None:
        """Raise, or record the rejection when skipping is allowed."""
        if not self.skip_bad:
            raise error
        self.n_skipped += 1
        self.reasons[error.reason.split(":")[0]] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(
                {"file": error.file, "record": error.record, "field": error.field, "reason": error.reason}
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "skip_bad": self.skip_bad,
            "n_skipped": self.n_skipped,
            "reasons": dict(self.reasons),
            "examples": self.examples,
        }

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, default=str))


def require(value: Any, *, file: str, record: int | str, field: str) -> Any:
    """A required field must be present and non-empty."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        raise InvalidInputError("missing required value", file=file, record=record, field=field)
    try:  # pandas NaN
        if value != value:
            raise InvalidInputError("missing required value", file=file, record=record, field=field)
    except TypeError:
        pass
    return value


INT64_MAX = 2**63 - 1


def as_int(value: Any, *, file: str, record: int | str, field: str) -> int:
    require(value, file=file, record=record, field=field)
    try:
        f = float(value)
        if f != int(f):
            raise ValueError
        out = int(f)
    except (TypeError, ValueError, OverflowError):  # OverflowError: "inf"
        raise InvalidInputError(
            f"expected an integer, got {str(value)[:40]!r}", file=file, record=record, field=field
        ) from None
    if abs(out) > INT64_MAX:
        raise InvalidInputError(f"integer {str(value)[:40]} is out of the 64-bit range", file=file, record=record, field=field)
    return out


def as_float(value: Any, *, file: str, record: int | str, field: str, lo: float | None = None, hi: float | None = None) -> float:
    """A finite number (NaN and ±inf parse as floats but are never valid data), within [lo, hi] when given."""
    require(value, file=file, record=record, field=field)
    try:
        out = float(str(value).replace(",", ""))
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"expected a number, got {str(value)[:40]!r}", file=file, record=record, field=field
        ) from None
    if not math.isfinite(out):
        raise InvalidInputError(f"expected a finite number, got {str(value)[:40]!r}", file=file, record=record, field=field)
    if (lo is not None and out < lo) or (hi is not None and out > hi):
        raise InvalidInputError(f"{out:g} is outside the valid range [{lo:g}, {hi:g}]", file=file, record=record, field=field)
    return out


def check_unique(ids: list[Any], records: list[int | str], *, file: str, field: str, report: ValidationReport) -> list[bool]:
    """Flags the first occurrence of each id as kept; later duplicates are rejected."""
    seen: dict[Any, int | str] = {}
    keep = []
    for i, r in zip(ids, records):
        if i in seen:
            report.reject(
                InvalidInputError(f"duplicate id {i!r} (first at record {seen[i]})", file=file, record=r, field=field)
            )
            keep.append(False)
        else:
            seen[i] = r
            keep.append(True)
    return keep
