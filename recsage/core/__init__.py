"""Shared plumbing with no heavy imports: errors, registries, seeding, persistence helpers."""

from recsage.core.errors import InvalidInputError, NotFittedError, RecsageError
from recsage.core.registry import Registry
from recsage.core.seeding import set_seed

__all__ = ["InvalidInputError", "NotFittedError", "RecsageError", "Registry", "set_seed"]
