"""Semantic-ID codebooks: item vectors to short code tuples, collisions, prefix index, metrics."""

from recsage.tokenizers.balanced import BalancedRQKMeansConfig, BalancedRQKMeansTokenizer
from recsage.tokenizers.collisions import collision_rate, make_unique
from recsage.tokenizers.item_vectors import collaborative_vectors, fuse_with_cooccurrence, item_text
from recsage.tokenizers.metrics import codebook_report
from recsage.tokenizers.prefix_index import SIDPrefixIndex
from recsage.tokenizers.registry import QUANTIZERS, make_quantizer
from recsage.tokenizers.rqkmeans import ResidualKMeansTokenizer, RQKMeansConfig
from recsage.tokenizers.rqvae import RQVAEConfig, RQVAETokenizer
from recsage.tokenizers.sid_table import SIDTable, item_fingerprint, sid_to_text, text_to_sid

__all__ = [
    "BalancedRQKMeansConfig", "BalancedRQKMeansTokenizer", "QUANTIZERS", "RQKMeansConfig", "RQVAEConfig", "RQVAETokenizer",
    "ResidualKMeansTokenizer", "SIDPrefixIndex", "SIDTable", "codebook_report", "collaborative_vectors", "collision_rate",
    "fuse_with_cooccurrence", "item_fingerprint", "item_text", "make_quantizer", "make_unique", "sid_to_text", "text_to_sid",
]
