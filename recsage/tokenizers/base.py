"""What every Semantic-ID quantizer shares: input checks, fit/transform contract, persistence.

A quantizer maps item vectors (n, d) to integer codes (n, n_levels), coarse to fine. Collision
handling is separate (`collisions.py`) so every quantizer offers the same choices.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recsage.core.errors import InvalidInputError, NotFittedError

FORMAT_VERSION = 1


def check_vectors(x: np.ndarray, *, name: str = "item vectors") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise InvalidInputError(f"{name} must be a 2-D (n_items, dim) array, got shape {x.shape}", field=name)
    if len(x) == 0:
        raise InvalidInputError(f"{name}: empty item set", field=name)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InvalidInputError(f"{name}: {len(bad)} rows contain NaN or inf (first: row {bad[0]})", record=int(bad[0]), field=name)
    return np.ascontiguousarray(x, dtype=np.float32)


class Quantizer(ABC):
    """Scikit-learn style: `__init__` stores the config, `fit` sets attributes ending in `_`."""

    config_class: ClassVar[type]
    registry_name: ClassVar[str]

    def __init__(self, config: Any = None) -> None:
        self.config = config or self.config_class()

    @property
    def n_levels(self) -> int:
        return self.config.n_levels

    @property
    def n_codes(self) -> int:
        return self.config.n_codes

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    def _check_fit_input(self, x: np.ndarray) -> np.ndarray:
        x = check_vectors(x)
        if self.n_codes > len(x):
            raise InvalidInputError(f"{self.n_codes} codes per level but only {len(x)} items: use --codes <= {len(x)}", field="n_codes")
        return x

    @abstractmethod
    def fit(self, x: np.ndarray) -> Quantizer:
        """Learn the codebooks from item vectors."""

    @abstractmethod
    def transform(self, x: np.ndarray) -> np.ndarray:
        """(n, n_levels) int64 codes."""

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)

    @abstractmethod
    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        """Vectors implied by codes, in the space reconstruction error is measured in."""

    def candidate_last_codes(self, x: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
        """For collision re-assignment: each item's k best last-level codes given its prefix."""
        raise InvalidInputError(f"{type(self).__name__} cannot rank last-level codes; use collision='suffix'", field="collision")

    # ---- persistence: config.json + safetensors, never pickle ----
    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _load_state(self, tensors: dict[str, np.ndarray]) -> None: ...

    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.numpy import save_file

        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(v) for k, v in self._state().items()}, str(d / "quantizer.safetensors"))
        (d / "config.json").write_text(json.dumps({"class": self.registry_name, "format_version": FORMAT_VERSION, "params": asdict(self.config)}, indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Quantizer:
        from safetensors.numpy import load_file

        from recsage.tokenizers.registry import QUANTIZERS

        d = Path(directory)
        cfg_path = d / "config.json"
        if not cfg_path.exists():
            raise InvalidInputError("not a saved quantizer (no config.json)", file=str(d))
        meta = json.loads(cfg_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise InvalidInputError(f"format_version {meta.get('format_version')} unsupported", file=str(cfg_path), field="format_version")
        klass = QUANTIZERS.get(meta["class"])
        known = {f.name for f in fields(klass.config_class)}
        obj = klass(klass.config_class(**{k: v for k, v in meta["params"].items() if k in known}))
        obj._load_state(load_file(str(d / "quantizer.safetensors")))
        obj.fitted_ = True
        return obj
