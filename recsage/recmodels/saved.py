"""Load any saved recommender folder by the class its config.json records."""

from __future__ import annotations

import json
from pathlib import Path

from recsage.core.errors import InvalidInputError


def saved_class(model_dir: str | Path) -> str:
    cfg = Path(model_dir) / "config.json"
    if not cfg.exists():
        raise InvalidInputError("not a saved model (no config.json)", file=str(Path(model_dir)))
    try:
        return str(json.loads(cfg.read_text()).get("class"))
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"config.json is not valid JSON ({e.msg})", file=str(cfg)) from None


def load_recommender(model_dir: str | Path):
    """SASRec, TagCF, generative SID (lazy/TIGER or DiffGRM), item-kNN, user-kNN, EASE, embedding-kNN or popularity model; other classes are refused with the known ones."""
    from recsage.recmodels.diffgrm import DiffGRMRecommender
    from recsage.recmodels.ease import EASERecommender
    from recsage.recmodels.embedding_knn import EmbeddingKNNRecommender
    from recsage.recmodels.generative import GenerativeSIDRecommender
    from recsage.recmodels.itemknn import ItemKNNRecommender
    from recsage.recmodels.popularity import PopularityRecommender
    from recsage.recmodels.sasrec import SASRec
    from recsage.recmodels.tagcf import TagCFRecommender
    from recsage.recmodels.userknn import UserKNNRecommender

    classes = {"sasrec": SASRec, "tagcf": TagCFRecommender, "generative": GenerativeSIDRecommender, "diffgrm": DiffGRMRecommender, "itemknn": ItemKNNRecommender,
               "popularity": PopularityRecommender, "embedding-knn": EmbeddingKNNRecommender, "userknn": UserKNNRecommender, "ease": EASERecommender}
    cls = saved_class(model_dir)
    if cls not in classes:
        raise InvalidInputError(f"unknown model class {cls!r}; known: {', '.join(classes)}", file=str(Path(model_dir) / "config.json"), field="class")
    return load_saved(classes[cls].from_pretrained, model_dir)


def load_saved(loader, model_dir: str | Path):
    """`loader(model_dir)` with every way a saved folder can be broken — garbage or truncated
    weights, a config.json missing keys or not matching the weights — reported as one error naming
    the folder, never a traceback from safetensors or torch."""
    try:
        return loader(model_dir)
    except InvalidInputError:
        raise
    except Exception as e:  # SafetensorError, RuntimeError (shapes), KeyError (config keys), OSError, …
        raise InvalidInputError(f"corrupt or mismatched saved model ({type(e).__name__}: {str(e)[:200]})", file=str(Path(model_dir))) from None
