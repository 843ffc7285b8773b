"""Frozen-dataclass configs that round-trip through JSON (config.json of saved models)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeVar

C = TypeVar("C", bound="ConfigMixin")


class ConfigMixin:
    """`to_dict` / `from_dict` for dataclass configs; unknown keys from older files are ignored."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in d.items() if k in names})
