"""Recommenders behind one `Recommender` interface: baselines now; SASRec and SID models next."""

from recsage.recmodels.base import RECOMMENDERS, Recommender, register_recommender
from recsage.recmodels.itemknn import ItemKNNConfig, ItemKNNRecommender
from recsage.recmodels.popularity import PopularityRecommender

__all__ = ["ItemKNNConfig", "ItemKNNRecommender", "PopularityRecommender", "RECOMMENDERS", "Recommender", "register_recommender"]
