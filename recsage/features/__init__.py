"""Feature tables built from what knowledge/, generation/ and tokenizers/ emit, and the ranking
stage that turns every signal into a (query, candidate) feature."""

from recsage.features.pairs import GROUPS, Candidates, PairFeaturizer, feature_group, generate_candidates
from recsage.features.signals import ItemSignals
from recsage.features.tables import Signals, TrainingView, build_tables, load_tables, read_manifest, save_tables
from recsage.features.two_stage import RankingData, TwoStageConfig, TwoStageRecommender, build_ranking_data, ranked_lists

__all__ = ["GROUPS", "Candidates", "ItemSignals", "PairFeaturizer", "RankingData", "Signals", "TrainingView", "TwoStageConfig",
           "TwoStageRecommender", "build_ranking_data", "build_tables", "feature_group", "generate_candidates", "load_tables",
           "ranked_lists", "read_manifest", "save_tables"]
