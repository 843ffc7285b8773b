"""Errors users see. Each names where the problem is, so nobody reads a deep traceback."""

from __future__ import annotations


class RecsageError(Exception):
    """Base class: every error recsage raises on purpose."""


class InvalidInputError(RecsageError, ValueError):
    """Bad input data, located by file, record (line or key) and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        record: int | str | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.file = file
        self.record = record
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class NotFittedError(RecsageError, RuntimeError):
    """An estimator was used before `fit`."""


class UnknownNameError(RecsageError, KeyError):
    """A registry lookup failed; the message lists the names that exist."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])
