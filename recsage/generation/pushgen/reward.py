"""Reward models that learn which of two copies for the same story gets the higher click rate.

All of them are pointwise scorers `score(texts) -> array` trained on pairs (Bradley–Terry: the
probability that a beats b is sigmoid(s(a) − s(b))), so one model ranks any number of
generated candidates. Pairs are weighted by the evidence behind them (|z| of the CTR difference).
"""

from __future__ import annotations

import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from recsage.core.config import ConfigMixin, read_saved_meta
from recsage.core.errors import InvalidInputError, NotFittedError
from recsage.core.registry import Registry

REWARD_MODELS: Registry = Registry("reward model")
FORMAT_VERSION = 1


def pair_weights(pairs: pd.DataFrame, cap: float = 3.0) -> np.ndarray:
    """More evidence, more weight: min(|z|, cap), floored so no pair is ignored entirely."""
    return np.clip(np.abs(pairs["z"].to_numpy(dtype=np.float64)), 0.25, cap)


def evaluate_pairs(pairs: pd.DataFrame, score_a: np.ndarray, score_b: np.ndarray) -> dict[str, float]:
    """Pairwise accuracy (ties count half) and AUC of the score difference, overall and on significant pairs."""
    out: dict[str, float] = {}
    for name, mask in (("all", np.ones(len(pairs), bool)), ("significant", pairs["significant"].to_numpy(bool))):
        d = (np.asarray(score_a) - np.asarray(score_b))[mask]
        y = pairs["label"].to_numpy()[mask]
        if not len(y):
            continue
        acc = np.where(d == 0, 0.5, (d > 0) == (y == 1)).mean()
        out[f"acc_{name}"] = round(float(acc), 4)
        out[f"auc_{name}"] = round(float(roc_auc_score(y, d)), 4) if len(np.unique(y)) == 2 else float("nan")
        out[f"pairs_{name}"] = int(len(y))
    return out


class RewardModel(ABC):
    name = "reward"

    @abstractmethod
    def fit(self, train: pd.DataFrame, valid: pd.DataFrame | None = None) -> RewardModel: ...

    @abstractmethod
    def score(self, texts: Sequence[str]) -> np.ndarray: ...

    def evaluate(self, pairs: pd.DataFrame) -> dict[str, float]:
        texts = list(pd.unique(pd.concat([pairs["a"], pairs["b"]])))
        s = dict(zip(texts, self.score(texts)))
        return evaluate_pairs(pairs, pairs["a"].map(s).to_numpy(), pairs["b"].map(s).to_numpy())

    def _check(self) -> None:
        if not getattr(self, "fitted_", False):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or from_pretrained()")


# ---------------- baselines ----------------
@REWARD_MODELS.register("random")
class RandomReward(RewardModel):
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, train, valid=None):
        self.fitted_ = True
        return self

    def score(self, texts):
        return np.random.default_rng(self.seed).random(len(texts))


@REWARD_MODELS.register("longer")
class LongerWins(RewardModel):
    name = "longer-wins"

    def fit(self, train, valid=None):
        self.fitted_ = True
        return self

    def score(self, texts):
        return np.array([len(t) for t in texts], dtype=np.float64)


_CLICKBAIT_WORDS = re.compile(r"\b(you|your|this|these|here's|here is|what|why|how|will|never|amazing|incredible|shocking|actually|just|every|won't|can't|need)\b", re.I)
_SUPERLATIVE = re.compile(r"\b(best|worst|most|least|greatest|biggest|ever|only)\b", re.I)


def clickbait_features(text: str) -> list[float]:
    """Hand-written headline cues from the clickbait literature (forward reference, 2nd person, numbers …)."""
    words = text.split()
    n = max(len(words), 1)
    return [
        len(text) / 100, n / 20, float("?" in text), float("!" in text), float(bool(re.search(r"\d", text))),
        len(_CLICKBAIT_WORDS.findall(text)) / n, len(_SUPERLATIVE.findall(text)) / n,
        sum(w[:1].isupper() for w in words) / n, float(text.count('"') + text.count("'") >= 2), float(":" in text),
        float(bool(re.match(r"^\d", text))), float(text.strip().endswith("?")),
    ]


@REWARD_MODELS.register("clickbait-lr")
class ClickbaitLogistic(RewardModel):
    """Logistic regression on feature differences; its coefficients score single copies."""

    name = "clickbait-lr"

    def fit(self, train, valid=None):
        from sklearn.linear_model import LogisticRegression

        fa = np.array([clickbait_features(t) for t in train["a"]])
        fb = np.array([clickbait_features(t) for t in train["b"]])
        x = np.concatenate([fa - fb, fb - fa])
        y = np.concatenate([train["label"], 1 - train["label"]])
        w = np.concatenate([pair_weights(train)] * 2)
        self.lr_ = LogisticRegression(C=1.0, fit_intercept=False, max_iter=1000).fit(x, y, sample_weight=w)
        self.fitted_ = True
        return self

    def score(self, texts):
        self._check()
        return np.array([clickbait_features(t) for t in texts]) @ self.lr_.coef_[0]


# ---------------- (a) frozen embeddings + pairwise head ----------------
@dataclass(frozen=True)
class EmbeddingRewardConfig(ConfigMixin):
    hidden: int = 128
    dropout: float = 0.2
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    seed: int = 0


def _bt_loss(sa: torch.Tensor, sb: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    margin = (sa - sb) * (2 * y - 1)
    return (nn.functional.softplus(-margin) * w).sum() / w.sum()


@REWARD_MODELS.register("embedding-bt")
class EmbeddingReward(RewardModel):
    """Frozen sentence embeddings → MLP score; early stopping on validation pairwise accuracy."""

    name = "embedding-bt"

    def __init__(self, config: EmbeddingRewardConfig | None = None, *, embed: Callable[[list[str]], np.ndarray] | None = None) -> None:
        self.config = config or EmbeddingRewardConfig()
        self.embed = embed

    def _embed(self, texts: Sequence[str]) -> torch.Tensor:
        if self.embed is None:
            from recsage.llm.embed import Embedder

            self.embed = Embedder().embed
        return torch.from_numpy(np.asarray(self.embed(list(texts)), dtype=np.float32))

    def _head(self, dim: int) -> nn.Module:
        c = self.config
        return nn.Sequential(nn.Dropout(c.dropout), nn.Linear(dim, c.hidden), nn.GELU(), nn.Dropout(c.dropout), nn.Linear(c.hidden, 1))

    def fit(self, train, valid=None):
        c = self.config
        torch.manual_seed(c.seed)
        texts = list(pd.unique(pd.concat([train["a"], train["b"]] + ([valid["a"], valid["b"]] if valid is not None else []))))
        vec = dict(zip(texts, self._embed(texts)))
        ea = torch.stack([vec[t] for t in train["a"]])
        eb = torch.stack([vec[t] for t in train["b"]])
        y = torch.tensor(train["label"].to_numpy(), dtype=torch.float32)
        w = torch.tensor(pair_weights(train), dtype=torch.float32)
        self.head_ = self._head(ea.shape[1])
        opt = torch.optim.AdamW(self.head_.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        best, best_state, self.history_ = -1.0, None, []
        rng = np.random.default_rng(c.seed)
        for epoch in range(c.epochs):
            self.head_.train()
            for idx in np.array_split(rng.permutation(len(y)), max(1, len(y) // c.batch_size)):
                i = torch.from_numpy(idx)
                loss = _bt_loss(self.head_(ea[i])[:, 0], self.head_(eb[i])[:, 0], y[i], w[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
            if valid is not None:
                self.fitted_ = True
                acc = self.evaluate(valid)["acc_all"]
                self.history_.append(acc)
                if acc > best:
                    best, best_state = acc, {k: v.clone() for k, v in self.head_.state_dict().items()}
        if best_state is not None:
            self.head_.load_state_dict(best_state)
        self.dim_ = int(ea.shape[1])
        self.fitted_ = True
        return self

    def score(self, texts):
        self._check()
        self.head_.eval()
        with torch.no_grad():
            return self.head_(self._embed(texts))[:, 0].numpy().astype(np.float64)

    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.head_.state_dict().items()}, str(d / "model.safetensors"))
        (d / "config.json").write_text(json.dumps({"class": self.name, "format_version": FORMAT_VERSION, "dim": self.dim_, "params": self.config.to_dict()}, indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, embed=None) -> EmbeddingReward:
        from safetensors.torch import load_file

        meta = _read_meta(directory, cls.name)
        obj = cls(EmbeddingRewardConfig.from_dict(meta["params"]), embed=embed)
        obj.head_ = obj._head(meta["dim"])
        obj.head_.load_state_dict(load_file(str(Path(directory) / "model.safetensors")))
        obj.dim_ = meta["dim"]
        obj.fitted_ = True
        return obj


def _read_meta(directory: str | Path, name: str) -> dict[str, Any]:
    return read_saved_meta(directory, name, FORMAT_VERSION, what="reward model")


# ---------------- (b) fine-tuned small transformer ----------------
@dataclass(frozen=True)
class FinetunedRewardConfig(ConfigMixin):
    max_length: int = 48
    epochs: int = 2
    lr: float = 3e-5
    batch_size: int = 32
    max_train_seconds: float | None = 900.0
    seed: int = 0


@REWARD_MODELS.register("finetuned-minilm")
class FinetunedReward(RewardModel):
    """MiniLM-L6 (the packaged sentence-transformers weights) fine-tuned end to end as a
    pointwise regressor with the pairwise loss; mean pooling → linear score."""

    name = "finetuned-minilm"

    def __init__(self, config: FinetunedRewardConfig | None = None, *, model_path: str | Path | None = None) -> None:
        self.config = config or FinetunedRewardConfig()
        self.model_path = model_path

    def _load_base(self):
        from transformers import AutoModel, AutoTokenizer

        from recsage.llm.embed import packaged_minilm_path

        path = Path(self.model_path) if self.model_path else packaged_minilm_path()
        self.tokenizer_ = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.encoder_ = AutoModel.from_pretrained(str(path), local_files_only=True)
        self.head_ = nn.Linear(self.encoder_.config.hidden_size, 1)

    def _forward(self, texts: Sequence[str]) -> torch.Tensor:
        enc = self.tokenizer_(list(texts), padding=True, truncation=True, max_length=self.config.max_length, return_tensors="pt")
        h = self.encoder_(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        return self.head_((h * mask).sum(1) / mask.sum(1).clamp_min(1))[:, 0]

    def fit(self, train, valid=None):
        from tqdm.auto import tqdm

        c = self.config
        torch.manual_seed(c.seed)
        self._load_base()
        params = list(self.encoder_.parameters()) + list(self.head_.parameters())
        opt = torch.optim.AdamW(params, lr=c.lr, weight_decay=0.01)
        a, b = train["a"].tolist(), train["b"].tolist()
        y = torch.tensor(train["label"].to_numpy(), dtype=torch.float32)
        w = torch.tensor(pair_weights(train), dtype=torch.float32)
        rng = np.random.default_rng(c.seed)
        start, self.steps_, self.stopped_early_ = time.perf_counter(), 0, False
        best, best_state, self.history_ = -1.0, None, []
        for epoch in range(c.epochs):
            self.encoder_.train()
            order = rng.permutation(len(y))
            for lo in tqdm(range(0, len(order), c.batch_size), desc=f"reward epoch {epoch + 1}", leave=False):
                i = order[lo : lo + c.batch_size]
                s = self._forward([a[k] for k in i] + [b[k] for k in i])
                loss = _bt_loss(s[: len(i)], s[len(i):], y[i], w[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
                self.steps_ += 1
                if c.max_train_seconds and time.perf_counter() - start > c.max_train_seconds:
                    self.stopped_early_ = True
                    break
            if valid is not None:
                self.fitted_ = True
                acc = self.evaluate(valid)["acc_all"]
                self.history_.append(acc)
                if acc > best:
                    best = acc
                    best_state = ({k: v.clone() for k, v in self.encoder_.state_dict().items()}, {k: v.clone() for k, v in self.head_.state_dict().items()})
            if self.stopped_early_:
                break
        if best_state is not None:
            self.encoder_.load_state_dict(best_state[0])
            self.head_.load_state_dict(best_state[1])
        self.train_seconds_ = time.perf_counter() - start
        self.fitted_ = True
        return self

    def score(self, texts):
        self._check()
        self.encoder_.eval()
        out = []
        with torch.no_grad():
            for lo in range(0, len(texts), 128):
                out.append(self._forward(texts[lo : lo + 128]).numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.encoder_.save_pretrained(d / "encoder", safe_serialization=True)
        self.tokenizer_.save_pretrained(d / "encoder")
        save_file({k: v.contiguous() for k, v in self.head_.state_dict().items()}, str(d / "head.safetensors"))
        (d / "config.json").write_text(json.dumps({"class": self.name, "format_version": FORMAT_VERSION, "params": self.config.to_dict()}, indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> FinetunedReward:
        from safetensors.torch import load_file

        meta = _read_meta(directory, cls.name)
        obj = cls(FinetunedRewardConfig.from_dict(meta["params"]), model_path=Path(directory) / "encoder")
        obj._load_base()
        obj.head_.load_state_dict(load_file(str(Path(directory) / "head.safetensors")))
        obj.fitted_ = True
        return obj


def load_reward_model(directory: str | Path) -> RewardModel:
    """Any saved reward model, by the class recorded in its config.json."""
    path = Path(directory) / "config.json"
    if not path.exists():
        raise InvalidInputError("not a saved reward model (no config.json)", file=str(Path(directory)))
    name = json.loads(path.read_text()).get("class")
    cls = {"embedding-bt": EmbeddingReward, "finetuned-minilm": FinetunedReward}.get(name)
    if cls is None:
        raise InvalidInputError(f"unknown reward model class {name!r}; known: embedding-bt, finetuned-minilm", file=str(path), field="class")
    return cls.from_pretrained(directory)
