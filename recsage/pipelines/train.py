"""Train, evaluate, save and use recommenders on a prepared dataset."""

from __future__ import annotations

import json
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from recsage.core.errors import InvalidInputError
from recsage.core.seeding import set_seed
from recsage.datasets import Dataset, Split
from recsage.evaluation import evaluate
from recsage.pipelines.data import load_split
from recsage.pipelines.sid import published_sid_table
from recsage.recmodels import RECOMMENDERS, EASEConfig, SASRec, SASRecConfig, TagCFConfig, TagCFRecommender, UserKNNConfig
from recsage.recmodels.defaults import adapt_params
from recsage.recmodels.generative import GenerativeConfig, GenerativeSIDRecommender
from recsage.tokenizers import SIDTable

METHODS = ("popularity", "itemknn", "userknn", "ease", "sasrec", "tagcf", "tiger", "lazy", "diffgrm", "thinking")
CLOSED_FORM = ("popularity", "itemknn", "userknn", "ease")  # fitted in one pass, no training loop
CLOSED_FORM_CONFIGS = {"userknn": UserKNNConfig, "ease": EASEConfig}  # the ones with `--set` keys
GENERATIVE = ("tiger", "lazy", "diffgrm", "thinking")  # decoded by beam search: smaller evaluation batches


def _config(cls, params: dict[str, Any], **fixed: Any):
    types = {f.name: str(f.type) for f in fields(cls)}
    unknown = set(params) - set(types)
    if unknown:
        raise InvalidInputError(f"unknown parameter(s) {sorted(unknown)} for {cls.__name__}; known: {sorted(types)}", field=sorted(unknown)[0])
    for key, value in params.items():
        check_setting_type(key, value, types[key])
    return cls(**{**params, **fixed})


def check_setting_type(key: str, value: Any, annotation: str) -> None:
    """`--set key=value` against the config field's annotation ("int", "float | None", …), before
    any work: a string where a number belongs used to fail minutes later inside torch."""
    allowed = {part.strip() for part in annotation.split("|")}
    if value is None and "None" in allowed:
        return
    ok = (("bool" in allowed and isinstance(value, bool))
          or ("int" in allowed and isinstance(value, int) and not isinstance(value, bool))
          or ("float" in allowed and isinstance(value, (int, float)) and not isinstance(value, bool))
          or ("str" in allowed and isinstance(value, str))
          or not allowed & {"bool", "int", "float", "str"})  # other annotations: left to the config
    if not ok:
        raise InvalidInputError(f"--set {key}={json.dumps(value)}: expected {annotation}, got {type(value).__name__}", field=key)


def resolve_sid(dataset: Dataset, sid: str | None) -> SIDTable:
    if not sid:
        raise InvalidInputError("generative models need --sid (a folder from `recsage sid fit`, or published:<index name>)", field="sid")
    if sid.startswith("published:"):
        return published_sid_table(dataset, sid.split(":", 1)[1])
    table = SIDTable.load(sid)
    table.check_items(dataset.items["raw_id"].tolist())
    if not table.is_unique:
        raise InvalidInputError("codebook has colliding semantic IDs; refit with --collision suffix or reassign", field="sid")
    return table


def build_model(method: str, dataset: Dataset, *, sid: str | None = None, seed: int = 0, checkpoint_dir: str | None = None,
                side_features: np.ndarray | None = None, item_tags: np.ndarray | None = None, logic: np.ndarray | None = None, **params: Any):
    """`item_tags`/`logic` (item×tag and tag×tag matrices, see `pipelines.tagcf.tagcf_inputs`) are for tagcf."""
    if method not in METHODS:
        raise InvalidInputError(f"unknown method {method!r}; known: {', '.join(METHODS)}", field="method")
    if method in CLOSED_FORM:
        cls = CLOSED_FORM_CONFIGS.get(method)
        return RECOMMENDERS.get(method)(*([_config(cls, params)] if cls else []))
    if method == "sasrec":
        return SASRec(_config(SASRecConfig, params, seed=seed), side_features=side_features, checkpoint_dir=checkpoint_dir)
    if method == "tagcf":
        if item_tags is None:
            raise InvalidInputError("tagcf needs item tags: pass --tags DIR (from `recsage tagcf extract` + `tagcf graph`)", field="tags")
        return TagCFRecommender(_config(TagCFConfig, params, seed=seed), item_tags=item_tags, logic=logic, side_features=side_features,
                                checkpoint_dir=checkpoint_dir)
    if method == "thinking":  # OneReason: `thought` (full | induction | shuffled) and `interest_key` (category | sid) travel in params
        from recsage.pipelines.onereason import build_thinking_model

        return build_thinking_model(dataset, resolve_sid(dataset, sid), seed=seed, side_features=side_features, checkpoint_dir=checkpoint_dir, **params)
    if method == "diffgrm":
        from recsage.recmodels.diffgrm import DiffGRMConfig, DiffGRMRecommender

        return DiffGRMRecommender(resolve_sid(dataset, sid), _config(DiffGRMConfig, params, architecture="lazy", seed=seed),
                                  side_features=side_features, checkpoint_dir=checkpoint_dir)
    arch = "encoder-decoder" if method == "tiger" else "lazy"
    return GenerativeSIDRecommender(resolve_sid(dataset, sid), _config(GenerativeConfig, params, architecture=arch, seed=seed),
                                    side_features=side_features, checkpoint_dir=checkpoint_dir)


def train_recommender(method: str, prepared: str | Path, *, protocol: str = "loo", sid: str | None = None, out: str | Path | None = None,
                      seed: int = 0, ks: tuple[int, ...] = (5, 10, 20), side_features: np.ndarray | None = None, split: Split | None = None,
                      dataset: Dataset | None = None, item_tags: np.ndarray | None = None, logic: np.ndarray | None = None,
                      adapt_defaults: bool = True, **params: Any) -> tuple[Any, dict[str, Any]]:
    """Fits on the split's training part (early stopping on validation), scores the test part.

    With `adapt_defaults` (the default) every torch-model setting not in `params` is chosen from
    the training data (`recmodels.defaults`); the row's `defaults` says which values and why."""
    from contextlib import nullcontext

    from recsage.core.locks import exclusive_folder
    from recsage.recmodels.trainer import dist_info

    # one writer per --out (under torchrun rank 0 writes; the other ranks only train)
    with exclusive_folder(out, "training run") if out is not None and dist_info()[0] == 0 else nullcontext():
        return _train(method, prepared, protocol=protocol, sid=sid, out=out, seed=seed, ks=ks, side_features=side_features, split=split,
                      dataset=dataset, item_tags=item_tags, logic=logic, adapt_defaults=adapt_defaults, **params)


def _train(method: str, prepared: str | Path, *, protocol: str, sid: str | None, out: str | Path | None, seed: int, ks: tuple[int, ...],
           side_features: np.ndarray | None, split: Split | None, dataset: Dataset | None, item_tags: np.ndarray | None,
           logic: np.ndarray | None, adapt_defaults: bool, **params: Any) -> tuple[Any, dict[str, Any]]:
    check_settings(method, params)  # before any data is read
    if split is None or dataset is None:
        dataset, split = load_split(prepared, protocol)
    defaults: dict[str, Any] = {}
    if adapt_defaults:
        params, defaults = adapt_params(method, split.train, params)
    set_seed(seed)
    ckpt = str(Path(out) / "checkpoints") if out else None
    model = build_model(method, dataset, sid=sid, seed=seed, checkpoint_dir=ckpt, side_features=side_features,
                        item_tags=item_tags, logic=logic, **params)
    t = time.perf_counter()
    if method in CLOSED_FORM:
        model.fit(split.train, split.valid)
    else:
        model.fit(split.train, split.valid, exclude_seen=split.exclude_seen)
    train_s = time.perf_counter() - t + (model.train_result_.prior_seconds if hasattr(model, "train_result_") else 0.0)
    from recsage.recmodels.trainer import dist_info

    if dist_info()[0] != 0:  # under torchrun every rank trains its shard; rank 0 evaluates and saves
        return model, {"rank": dist_info()[0], "train_seconds": round(train_s, 1)}
    t = time.perf_counter()
    metrics = evaluate(model, split.test, ks, n_items=split.n_items, exclude_seen=split.exclude_seen, batch_size=512 if method in GENERATIVE else 1024)
    row = {"dataset": dataset.name, "method": method, "protocol": split.protocol, "exclude_seen": split.exclude_seen, "seeds": [seed],
           "sid": sid, **metrics, "train_seconds": round(train_s, 1), "eval_seconds": round(time.perf_counter() - t, 1),
           "ms_per_user": round(1000 * (time.perf_counter() - t) / max(len(split.test), 1), 2)}
    if hasattr(model, "train_result_"):
        row["best_epoch"] = model.train_result_.best_epoch
        row["epochs_run"] = model.train_result_.epochs_run
        row["stopped_by_time"] = model.train_result_.stopped_by_time
        row["resumed_from_epoch"] = model.train_result_.resumed_from  # None: a fresh run; train_seconds counts every attempt
    if method in GENERATIVE:
        row["beam_size"] = model.config.beam_size
    if defaults:
        row["defaults"] = defaults
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if hasattr(model, "save_pretrained"):
            model.save_pretrained(out / "model")
        (out / "metrics.json").write_text(json.dumps(row, indent=2, default=str))
    return model, row


def load_model(model_dir: str | Path):
    """Any saved recommender, the two-stage ranker included."""
    from recsage.features.two_stage import TwoStageRecommender
    from recsage.recmodels.saved import load_recommender, load_saved, saved_class

    if saved_class(model_dir) == "two-stage":
        return load_saved(TwoStageRecommender.from_pretrained, model_dir)
    if saved_class(model_dir) == "thinking":  # its thinker (the OneReason chain) is rebuilt by the pipeline
        from recsage.pipelines.onereason import load_thinking_model

        return load_saved(load_thinking_model, model_dir)
    return load_recommender(model_dir)


def method_settings(method: str) -> list[dict[str, Any]]:
    """Every `--set` key of `method`'s config: name, type, fixed default and the meaning written
    next to it in the config class (the defaults chosen from the data, if any, are in the run's
    report). itemknn and popularity have no settings."""
    import inspect
    import re

    from recsage.recmodels.diffgrm import DiffGRMConfig
    from recsage.recmodels.tagcf import TagCFConfig

    if method not in METHODS:
        raise InvalidInputError(f"unknown method {method!r}; known: {', '.join(METHODS)}", field="method")
    if method == "thinking":
        from recsage.recmodels.thinking import ThinkingConfig as cls
    else:
        cls = {"sasrec": SASRecConfig, "tagcf": TagCFConfig, "tiger": GenerativeConfig, "lazy": GenerativeConfig, "diffgrm": DiffGRMConfig,
               **CLOSED_FORM_CONFIGS}.get(method)
    if cls is None:
        return []
    meaning: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass's comment wins
        if "__dataclass_fields__" not in vars(klass):
            continue
        for line in inspect.getsource(klass).splitlines():
            m = re.match(r"\s+(\w+): [^=]+=[^#]*#\s*(.*)$", line)
            if m:
                meaning[m.group(1)] = m.group(2)
    return [{"key": f.name, "type": str(f.type), "default": f.default, "meaning": meaning.get(f.name, "")} for f in fields(cls)]


def check_settings(method: str, params: dict[str, Any]) -> None:
    """Unknown `--set` keys and values of the wrong type are refused up front (the config classes
    re-check ranges they know, e.g. DiffGRM's ocn_fraction)."""
    types = {r["key"]: r["type"] for r in method_settings(method)}
    if not types:
        return
    unknown = set(params) - set(types) - ({"thought", "interest_key"} if method == "thinking" else set())  # OneReason's pipeline keys
    if unknown:
        raise InvalidInputError(f"unknown parameter(s) {sorted(unknown)} for {method}; known: {sorted(types)}", field=sorted(unknown)[0])
    for key, value in params.items():
        if key in types:
            check_setting_type(key, value, types[key])

