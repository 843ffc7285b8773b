"""Recommenders behind one `Recommender` interface: baselines, SASRec; generative SID models next."""

from recsage.recmodels.base import RECOMMENDERS, Recommender, register_recommender
from recsage.recmodels.itemknn import ItemKNNConfig, ItemKNNRecommender
from recsage.recmodels.popularity import PopularityRecommender
from recsage.recmodels.ease import EASEConfig, EASERecommender
from recsage.recmodels.userknn import UserKNNConfig, UserKNNRecommender
from recsage.recmodels.decoding import constrained_beam_search
from recsage.recmodels.generative import GenerativeConfig, GenerativeSIDRecommender
from recsage.recmodels.sasrec import SASRec, SASRecConfig
from recsage.recmodels.tagcf import TagCFConfig, TagCFRecommender

__all__ = ["EASEConfig", "EASERecommender", "UserKNNConfig", "UserKNNRecommender", "GenerativeConfig", "GenerativeSIDRecommender", "constrained_beam_search", "ItemKNNConfig", "ItemKNNRecommender", "PopularityRecommender", "RECOMMENDERS", "Recommender", "SASRec", "SASRecConfig", "TagCFConfig", "TagCFRecommender", "register_recommender"]
