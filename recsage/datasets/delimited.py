"""Line-oriented reading of delimited text files, with file:line in every error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from recsage.core.errors import InvalidInputError
from recsage.datasets.tabular import text_lines
from recsage.datasets.validation import ValidationReport


def read_delimited(
    path: Path,
    sep: str,
    n_fields: int,
    report: ValidationReport,
    *,
    encoding: str = "utf-8",
    min_fields: int | None = None,
) -> Iterator[tuple[int, list[str]]]:
    """Yields (line number, fields) for well-formed lines; malformed ones go to the report."""
    for lineno, line in text_lines(path, encoding):  # a missing file, undecodable bytes, huge lines: an error naming them
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split(sep)
        lo = n_fields if min_fields is None else min_fields
        if not (lo <= len(fields) <= n_fields):
            report.reject(
                InvalidInputError(
                    f"malformed row: {len(fields)} fields, expected {n_fields}",
                    file=str(path),
                    record=f"line {lineno}",
                )
            )
            continue
        yield lineno, fields
