"""SASRec trained with softmax cross-entropy — full, or sampled for large catalogues (the strong, honest sequential baseline)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recsage.core.config import ConfigMixin, read_saved_meta
from recsage.core.errors import InvalidInputError
from recsage.datasets.splits import QuerySet, SequenceSet
from recsage.evaluation import evaluate
from recsage.recmodels.base import ScoringRecommender, register_recommender, validation_sample
from recsage.recmodels.layers import CausalEncoder, ItemEncoder, left_pad, trim_padding
from recsage.recmodels.trainer import Trainer, TrainerConfig, TrainResult

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SASRecConfig(ConfigMixin):
    max_len: int = 20  # history length the model sees (sliding windows cover longer sequences)
    dim: int = 64  # model width
    n_layers: int = 2  # transformer layers
    n_heads: int = 2  # attention heads
    dropout: float = 0.3  # dropout everywhere in the network
    batch_size: int = 256  # training samples per optimiser step
    epochs: int = 60  # passes over the training data (early stopping may end sooner)
    lr: float = 1e-3  # peak learning rate (AdamW)
    weight_decay: float = 0.0  # AdamW weight decay
    patience: int = 5  # epochs without validation gain before stopping
    seed: int = 0  # seeds weights, batch order and dropout
    max_steps_per_epoch: int | None = None  # cap on optimiser steps per epoch (None: the whole epoch)
    max_train_seconds: float | None = None  # wall-clock cap on training (also --max-minutes); a run it stops says so
    lr_schedule: str = "constant"  # or "cosine": decays over `epochs` (set epochs to what the budget allows)
    warmup_steps: int = 0  # linear learning-rate warm-up steps
    valid_users: int | None = None  # early-stop on this many validation users (a fixed seeded sample); None: all
    mask_padding: bool = True  # hide left padding as attention keys (False: the session-2 behaviour, padding only zeroed)
    attention: str = "full"  # or "svd": SOLAR's SVD-attention, O(N·d·r) for long histories (recmodels.svd_attention)
    attention_rank: int = 32  # r of the SVD-attention (landmarks per head); exact when a history has ≤ r distinct behaviours
    attention_local: int = 0  # SVD-attention: exact attention over the newest block of this many positions (and the one before); 0 = none
    loss: str = "ce"  # "ce": full softmax over every item; "sampled": softmax over the target and `negatives` shared negatives (~7x cheaper step at 12k items)
    negatives: int = 256  # loss="sampled": negatives drawn per batch (shared by every position; accidental hits masked)
    negative_sampling: str = "uniform"  # loss="sampled": "uniform", or "mixed" (half uniform, half by training frequency, logQ-corrected)
    side_init: str = "default"  # side-feature projection: PyTorch's init, or "zero" (starts as the id-only model; cost the TagCF lift on ML-100K)
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        if self.attention not in ("full", "svd"):
            raise InvalidInputError(f"attention must be 'full' or 'svd', got {self.attention!r}", field="attention")
        if self.attention_rank < 1:
            raise InvalidInputError(f"attention_rank must be ≥ 1, got {self.attention_rank}", field="attention_rank")
        if self.attention_local < 0:
            raise InvalidInputError(f"attention_local must be ≥ 0, got {self.attention_local}", field="attention_local")
        if self.loss not in ("ce", "sampled"):
            raise InvalidInputError(f"loss must be 'ce' or 'sampled', got {self.loss!r}", field="loss")
        if self.negative_sampling not in ("uniform", "mixed"):
            raise InvalidInputError(f"negative_sampling must be 'uniform' or 'mixed', got {self.negative_sampling!r}", field="negative_sampling")
        if self.negatives < 1:
            raise InvalidInputError(f"negatives must be ≥ 1, got {self.negatives}", field="negatives")
        if self.side_init not in ("default", "zero"):
            raise InvalidInputError(f"side_init must be 'default' or 'zero', got {self.side_init!r}", field="side_init")


class SASRecModule(nn.Module):
    def __init__(self, n_items: int, config: SASRecConfig, side_features: np.ndarray | None = None) -> None:
        super().__init__()
        self.items = ItemEncoder(n_items, config.dim, side_features, side_init=config.side_init)
        self.encoder = CausalEncoder(config.dim, config.n_layers, config.n_heads, config.max_len, config.dropout, mask_padding=config.mask_padding,
                                     attention=config.attention, attention_rank=config.attention_rank, attention_local=config.attention_local)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) shifted ids → (B, L, dim) hidden states."""
        return self.encoder(self.items(ids), ids == 0)


def training_windows(sequences: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets, right-aligned; long sequences are cut into windows so each
    target is predicted exactly once from up to `max_len` previous items."""
    xs, ys = [], []
    for s in sequences:
        s = np.asarray(s)
        if len(s) < 2:
            continue
        end = len(s)
        while end > 1:
            start = max(0, end - 1 - max_len)
            inp, tgt = s[start : end - 1], s[start + 1 : end]
            x = np.zeros(max_len, dtype=np.int64)
            y = np.full(max_len, -100, dtype=np.int64)
            x[-len(inp):] = inp + 1
            y[-len(tgt):] = tgt
            xs.append(x)
            ys.append(y)
            end = start + 1
    return np.stack(xs), np.stack(ys)


def length_buckets(order: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator, chunk: int = 64) -> np.ndarray:
    """A shuffled order in which each batch holds windows of similar length: `order` is cut into
    chunks of `chunk` batches, each chunk sorted by length and split into batches, and the batches
    are shuffled — still random across epochs, with little padding per batch."""
    span = batch_size * chunk
    groups = []
    for lo in range(0, len(order), span):
        part = order[lo : lo + span]
        part = part[np.argsort(lengths[part], kind="stable")]
        groups += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return np.concatenate([groups[i] for i in rng.permutation(len(groups))])


def sampled_softmax_loss(h: torch.Tensor, targets: torch.Tensor, items: ItemEncoder, negatives: int,
                         popularity: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax cross-entropy over each position's target and `negatives` items drawn once per
    batch (shared by all positions; a negative equal to the target is masked out).

    Why: with full softmax the output layer is most of a CPU step on a 12k-item catalogue (every
    position scores every item); sharing a few hundred negatives makes a Beauty step ~7x cheaper,
    so the same minutes buy more epochs. Uniform draws need no correction (the proposal is
    constant). With `popularity` (training frequencies) half the draws follow it — the popular
    items that full softmax pushes down hardest — and every logit is corrected by log q (q the
    mixture's probability of the item). Draws come from torch's global generator, which the
    trainer seeds per epoch, so a resumed run draws what the uninterrupted one did."""
    n = items.n_items
    if popularity is None:
        neg = torch.randint(n, (negatives,), device=h.device)
    else:
        half = negatives // 2
        neg = torch.cat([torch.randint(n, (negatives - half,), device=h.device), torch.multinomial(popularity, half, replacement=True)])
    pos_logit = (h * items(targets + 1)).sum(-1, keepdim=True)
    neg_logit = h @ items(neg + 1).T
    if popularity is not None:
        log_q = torch.log(0.5 / n + 0.5 * popularity / popularity.sum())
        pos_logit, neg_logit = pos_logit - log_q[targets, None], neg_logit - log_q[neg][None, :]
    neg_logit = neg_logit.masked_fill(neg[None, :] == targets[:, None], float("-inf"))
    logits = torch.cat([pos_logit, neg_logit], dim=1)
    return nn.functional.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long, device=h.device))


@register_recommender("sasrec")
class SASRec(ScoringRecommender):
    def __init__(self, config: SASRecConfig | None = None, *, side_features: np.ndarray | None = None, checkpoint_dir: str | None = None) -> None:
        self.config = config or SASRecConfig()
        self.side_features = side_features
        self.checkpoint_dir = checkpoint_dir

    def _build(self, n_items: int) -> None:
        torch.manual_seed(self.config.seed)
        self.module_ = SASRecModule(n_items, self.config, self.side_features)
        self.n_items_ = n_items

    def fit(self, train: SequenceSet, valid: QuerySet | None = None, *, exclude_seen: bool = True) -> SASRec:
        c = self.config
        if train.n_interactions == 0:
            raise InvalidInputError("no training interactions", field="train")
        self._build(train.n_items)
        x, y = training_windows(train.sequences, c.max_len)
        counts = np.bincount(np.concatenate(train.sequences), minlength=train.n_items).astype(np.float64)
        self.popularity_ = counts
        # loss="sampled", negative_sampling="mixed": half the negatives are drawn by training frequency
        self._draw_weights = torch.as_tensor(counts, dtype=torch.float32) if c.loss == "sampled" and c.negative_sampling == "mixed" else None
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        lengths = (x != 0).sum(axis=1)

        def batches(epoch: int):
            rng = np.random.default_rng([c.seed, epoch])
            order = rng.permutation(len(xt))
            if c.mask_padding:  # similar lengths share a batch, so trimming its padding saves the most
                order = length_buckets(order, lengths, c.batch_size, rng)
            for lo in range(0, len(order), c.batch_size):
                idx = torch.from_numpy(order[lo : lo + c.batch_size])
                yield trim_padding(xt[idx], yt[idx]) if c.mask_padding else (xt[idx], yt[idx])

        def loss(model: nn.Module, batch) -> torch.Tensor:
            inp, tgt = batch
            return self._loss(model(inp), tgt)

        valid = validation_sample(valid, c.valid_users, c.seed)

        def validate() -> float:
            return evaluate(self, valid, (10,), n_items=self.n_items_, exclude_seen=exclude_seen, progress=False)["ndcg@10"]

        trainer = Trainer(
            self.module_,
            TrainerConfig(epochs=c.epochs, lr=c.lr, weight_decay=c.weight_decay, patience=c.patience, seed=c.seed,
                          max_steps_per_epoch=c.max_steps_per_epoch, progress=c.progress, checkpoint_dir=self.checkpoint_dir,
                          max_seconds=c.max_train_seconds, schedule=c.lr_schedule, warmup_steps=c.warmup_steps),
            batches=batches, loss=loss, validate=validate if valid is not None else None,
        )
        self.train_result_: TrainResult = trainer.fit()
        return self

    def _loss(self, h: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Next-item cross-entropy over every non-padding position: full softmax, or sampled softmax."""
        valid_pos = tgt >= 0
        if self.config.loss == "sampled":
            return sampled_softmax_loss(h[valid_pos], tgt[valid_pos], self.module_.items, self.config.negatives, self._draw_weights)
        logits = h[valid_pos] @ self.module_.items.all_items().T
        return nn.functional.cross_entropy(logits, tgt[valid_pos])

    def _scores(self, h: torch.Tensor) -> torch.Tensor:
        """(B, dim) last hidden states → (B, n_items) ranking scores."""
        return h @ self.module_.items.all_items().T

    def _last_hidden(self, histories: list[np.ndarray]) -> torch.Tensor:
        """(B, dim) hidden state after each history's newest item (padding trimmed when masked)."""
        ids = left_pad(histories, self.config.max_len)
        if self.config.mask_padding:
            ids = trim_padding(ids)[0]
        return self.module_(ids)[:, -1]

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        self.module_.eval()
        out = np.empty((len(histories), self.n_items_), dtype=np.float32)
        cold = np.array([len(h) == 0 for h in histories])
        with torch.no_grad():
            for lo in range(0, len(histories), 512):
                out[lo : lo + 512] = self._scores(self._last_hidden(histories[lo : lo + 512])).numpy()
        if cold.any():  # no history: popularity, and say so
            out[cold] = self.popularity_ / self.popularity_.max()
        self.cold_fallbacks_ = int(cold.sum())
        return out

    # ---- persistence: config.json + model.safetensors (subclasses add tensors/meta via the hooks) ----
    saved_class = "sasrec"
    config_class = SASRecConfig

    def _extra_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def _extra_meta(self) -> dict[str, Any]:
        return {"side_dim": None if self.side_features is None else int(np.shape(self.side_features)[1])}

    @classmethod
    def _from_saved(cls, config, state: dict[str, torch.Tensor], side_features: np.ndarray | None):
        """A fresh instance from a saved config; pops the subclass's extra tensors off `state`."""
        return cls(config, side_features=side_features)

    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.module_.state_dict().items()}
        state |= {"popularity": torch.from_numpy(self.popularity_), **self._extra_tensors()}
        save_file(state, str(d / "model.safetensors"))
        (d / "config.json").write_text(json.dumps({"class": self.saved_class, "format_version": FORMAT_VERSION, "n_items": self.n_items_,
                                                   **self._extra_meta(), "params": self.config.to_dict()}, indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path):
        from safetensors.torch import load_file

        d = Path(directory)
        meta = read_saved_meta(d, cls.saved_class, FORMAT_VERSION)
        state = load_file(str(d / "model.safetensors"))
        side = state.get("items.side")
        params = {"mask_padding": False, **meta["params"]}  # saved before the padding mask existed: trained without it
        obj = cls._from_saved(cls.config_class.from_dict(params), state, None if side is None else side[1:].numpy())
        obj._build(meta["n_items"])
        obj.popularity_ = state.pop("popularity").numpy()
        obj.module_.load_state_dict(state)
        obj.module_.eval()
        return obj
