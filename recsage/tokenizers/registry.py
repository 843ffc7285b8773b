"""Quantizers by name, for the CLI, workbench and benchmarks."""

from __future__ import annotations

from recsage.core.registry import Registry
from recsage.tokenizers.balanced import BalancedRQKMeansTokenizer
from recsage.tokenizers.parallel import ParallelSemanticTokenizer
from recsage.tokenizers.rqkmeans import ResidualKMeansTokenizer
from recsage.tokenizers.rqvae import RQVAETokenizer

QUANTIZERS: Registry[type] = Registry("SID method")
for _cls in (ResidualKMeansTokenizer, BalancedRQKMeansTokenizer, RQVAETokenizer, ParallelSemanticTokenizer):
    QUANTIZERS.register(_cls.registry_name)(_cls)


def make_quantizer(method: str, **params):
    cls = QUANTIZERS.get(method)
    known = set(cls.config_class.__dataclass_fields__)
    return cls(cls.config_class(**{k: v for k, v in params.items() if k in known and v is not None}))
