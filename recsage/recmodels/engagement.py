"""LCU's engagement model: how long will this user stay in this comment section?

Shaped after LCU's public recipe. Every input becomes a field token of width `dim` — the ID
fields (user, context buckets), the post's text embedding, the pooled visible comments — and
the tokens pass through one layer of field self-attention. A DCN (three cross layers beside an
MLP) reads the result. Two heads sit on top:
- the main head is a weighted logistic regression on the long-engagement label, with positives
  weighted by their engagement;
- a correction head is a plain classifier of the same label.
The prediction is engagement = σ(p)/(1−σ(p))·(1−σ(p_c)) (WLR's odds, corrected).

Two auxiliary comment-ranking heads share the comment tokens. Aux 1 is user-specific: BCE on
which visible comment the user replied to. Aux 2 is user-agnostic: ListMLE over the visible
comments' upvotes. Their weights are λ1 and λ2 (LCU's code defaults .001 / .1). Each head also
reads its own embeddings of a comment's context fields (depth, age, by-OP; not its author) and of
its rank from the newest. With λ1 =
.001 the shared comment tokens are shaped almost only by the main task, so a head that saw only
them ranked worse than "newest first"; its own tables let it learn recency and depth at full
strength, while what reaches the shared layers is still weighted by λ, as in LCU.

Text and label tables are frozen, non-persistent buffers. A saved model keeps only what it
learned; the caller hands the same tables back when it loads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recsage.core.config import read_saved_meta
from recsage.core.errors import InvalidInputError
from recsage.core.seeding import set_seed

FORMAT_VERSION = 2  # 2: the ranking heads' own slot tables
MAX_SLOTS = 32  # rank-from-newest embeddings; a longer list shares the last one
MAX_CONTEXT_VOCAB = 64  # a slot field with more values is an identity (author), not context


@dataclass(frozen=True)
class EngagementConfig:
    dim: int = 16
    heads: int = 2
    n_cross: int = 3
    mlp: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    norm_dense: bool = True  # LayerNorm on the text tokens (see `dense_token`)
    use_text: bool = True  # MiniLM embeddings of the post and of the visible comments
    use_labels: bool = True  # LLM (student) label distributions of the visible comments
    lambda_user: float = 0.001  # aux 1: which visible comment the user replied to
    user_loss: str = "bce"  # aux 1's loss: "bce" (LCU's, per comment) or "softmax" (per list; see `reply_softmax_loss`)
    lambda_popular: float = 0.1  # aux 2: ListMLE over the visible comments' upvotes
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 512
    epochs: int = 4
    time_budget_seconds: float | None = None
    patience: int | None = None  # stop after this many epochs without a better valid AUC (None: run all)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mlp"] = list(self.mlp)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngagementConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "mlp" in known:
            known["mlp"] = tuple(known["mlp"])
        return cls(**known)


@dataclass
class EngagementInputs:
    """Aligned arrays, one row per (user, item) example; tables are indexed, not copied per row.

    `id_fields` (n, F) with `id_sizes` (index 0 = unknown); `slot_ids` (n, K, S) per visible
    comment with `slot_sizes`; `mask` (n, K); `item_index` (n,) into `item_text`; `comment_index`
    (n, K) into `comment_text` / `comment_labels` (−1 = empty slot). Targets: `engagement`, `long`,
    `replied` (n, K), `upvotes` (n, K).
    """

    id_fields: np.ndarray
    id_sizes: list[int]
    slot_ids: np.ndarray
    slot_sizes: list[int]
    mask: np.ndarray
    item_index: np.ndarray
    comment_index: np.ndarray
    engagement: np.ndarray
    long: np.ndarray
    replied: np.ndarray
    upvotes: np.ndarray
    item_text: np.ndarray | None = None
    comment_text: np.ndarray | None = None
    comment_labels: np.ndarray | None = None
    field_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.id_fields)

    def subset(self, rows: np.ndarray) -> EngagementInputs:
        per_row = ("id_fields", "slot_ids", "mask", "item_index", "comment_index", "engagement", "long", "replied", "upvotes")
        kw = {k: getattr(self, k) for k in self.__dataclass_fields__}
        kw.update({k: getattr(self, k)[rows] for k in per_row})
        return EngagementInputs(**kw)


def list_mle(scores: torch.Tensor, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ListMLE (Xia et al. 2008): −log P(the true order | scores) under Plackett-Luce, per list,
    over the real slots only; lists with fewer than two real slots contribute nothing."""
    neg = torch.finfo(scores.dtype).min / 4
    order = torch.argsort(torch.where(mask, values, torch.full_like(values, neg)), dim=1, descending=True)
    s = torch.gather(torch.where(mask, scores, torch.full_like(scores, neg)), 1, order)
    m = torch.gather(mask, 1, order)
    s = torch.where(m, s, torch.full_like(s, neg))
    # log-sum-exp of each suffix: logcumsumexp over the reversed list
    tail = torch.flip(torch.logcumsumexp(torch.flip(s, [1]), 1), [1])
    per_slot = torch.where(m, tail - s, torch.zeros_like(s))
    ok = m.sum(1) >= 2
    if not ok.any():
        return scores.sum() * 0.0
    return per_slot[ok].sum(1).mean()


def reply_softmax_loss(scores: torch.Tensor, replied: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Listwise aux-1 loss: cross-entropy between the softmax over a list's real slots and its
    replied-to slots (shared equally when several), over lists with a reply only.

    Why beside LCU's pointwise BCE: BCE is fitted mostly on the ~83% of lists with no reply and
    calibrates each comment across lists, which is not the same as ordering one list; measured
    on the Reddit sections, its ranking fell below "newest first" even on the training lists."""
    target = replied * mask
    has = target.sum(1) > 0
    if not has.any():
        return scores.sum() * 0.0
    logp = torch.log_softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min / 4), 1)
    per_list = -(target / target.sum(1, keepdim=True).clamp(min=1) * logp).sum(1)
    return per_list[has].mean()


USER_LOSSES = ("bce", "softmax")


class CrossNetwork(nn.Module):
    """DCN cross layers: x_{l+1} = x0 ⊙ (W x_l + b) + x_l."""

    def __init__(self, width: int, n_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(n_layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for lin in self.layers:
            x = x0 * lin(x) + x
        return x


def dense_token(width: int, d: int, norm: bool) -> nn.Module:
    """A dense input (a text embedding, label probabilities) as a field token. Unit-norm MiniLM
    vectors through a freshly initialised linear layer come out ~30× smaller than an ID
    embedding, so without the LayerNorm the text barely reaches the attention in a few epochs.
    Label probabilities are already O(1) and nearly alike from comment to comment; a LayerNorm
    blows those small differences up to unit scale (measured: IDs + labels fell .011 AUC below
    IDs only), so they pass through the plain linear layer."""
    return nn.Sequential(nn.Linear(width, d), nn.LayerNorm(d)) if norm else nn.Linear(width, d)


class SlotTokens(nn.Module):
    """A ranking head's own token per visible comment: its slot fields plus its rank from the
    newest visible comment (slots run oldest → newest; the newest is always the last slot)."""

    def __init__(self, slot_sizes: list[int], d: int) -> None:
        super().__init__()
        # context fields only (depth, age buckets, by-OP): an identity field such as the comment's
        # author, learnt from a head's few positives, fits training threads and hurts new ones
        self.used = [j for j, n in enumerate(slot_sizes) if n <= MAX_CONTEXT_VOCAB]
        self.fields = nn.ModuleList(nn.Embedding(slot_sizes[j], d) for j in self.used)
        self.rank = nn.Embedding(MAX_SLOTS, d)

    def forward(self, slot_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k = mask.shape[1]
        from_newest = (k - 1 - torch.arange(k, device=mask.device)).clamp(max=MAX_SLOTS - 1)
        tok = self.rank(from_newest) + sum(emb(slot_ids[..., j]) for j, emb in zip(self.used, self.fields))
        return tok * mask.unsqueeze(-1)


class EngagementModule(nn.Module):
    def __init__(self, cfg: EngagementConfig, id_sizes: list[int], slot_sizes: list[int], text_dim: int | None, label_dim: int | None) -> None:
        super().__init__()
        d = cfg.dim
        self.cfg = cfg
        self.id_emb = nn.ModuleList(nn.Embedding(n, d) for n in id_sizes)
        self.slot_emb = nn.ModuleList(nn.Embedding(n, d) for n in slot_sizes)
        self.text_proj = dense_token(text_dim, d, cfg.norm_dense) if text_dim else None
        self.comment_text_proj = dense_token(text_dim, d, cfg.norm_dense) if text_dim else None
        self.label_proj = dense_token(label_dim, d, False) if label_dim else None  # see `dense_token`
        n_tokens = len(id_sizes) + 1 + (1 if text_dim else 0)  # ids, pooled comments, post text
        self.attn = nn.MultiheadAttention(d, cfg.heads, batch_first=True, dropout=cfg.dropout)
        self.norm = nn.LayerNorm(d)
        width = n_tokens * d
        self.cross = CrossNetwork(width, cfg.n_cross)
        layers: list[nn.Module] = []
        prev = width
        for h in cfg.mlp:
            layers += [nn.Linear(prev, h), nn.ReLU(), nn.Dropout(cfg.dropout)]
            prev = h
        self.mlp = nn.Sequential(*layers)
        self.main = nn.Linear(width + prev, 1)
        self.correction = nn.Linear(width + prev, 1)
        self.user_query = nn.Linear(width + prev, d)  # aux 1: this user's taste, scored against each comment
        self.user_slots = SlotTokens(slot_sizes, d)  # aux 1's own view of recency, depth, age, by-OP (not the author)
        self.user_slot_score = nn.Linear(d, 1)
        # the user × comment term starts switched off: the head begins as a ranker of context
        # (recency, depth) and lets the personal term in only as far as training rewards it
        self.user_gate = nn.Parameter(torch.zeros(()))
        self.popular_slots = SlotTokens(slot_sizes, d)  # aux 2's own view of the same
        self.popular = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, 1))  # aux 2: comment ⊕ post, no user

    def comment_tokens(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tok = sum(emb(batch["slot_ids"][..., j]) for j, emb in enumerate(self.slot_emb))
        if self.comment_text_proj is not None:
            tok = tok + self.comment_text_proj(batch["comment_text"])
        if self.label_proj is not None:
            tok = tok + self.label_proj(batch["comment_labels"])
        return tok * batch["mask"].unsqueeze(-1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ids = batch["id_fields"]
        tokens = [emb(ids[:, j]) for j, emb in enumerate(self.id_emb)]
        com = self.comment_tokens(batch)
        n_vis = batch["mask"].sum(1, keepdim=True).clamp(min=1)
        tokens.append(com.sum(1) / n_vis)
        post = self.text_proj(batch["item_text"]) if self.text_proj is not None else torch.zeros_like(tokens[0])
        if self.text_proj is not None:
            tokens.append(post)
        x = torch.stack(tokens, 1)
        x = self.norm(x + self.attn(x, x, x, need_weights=False)[0])
        flat = x.flatten(1)
        h = torch.cat([self.cross(flat), self.mlp(flat)], 1)
        user_tok = self.user_slots(batch["slot_ids"], batch["mask"])
        personal = ((com + user_tok) * self.user_query(h).unsqueeze(1)).sum(-1)
        user_scores = self.user_slot_score(user_tok).squeeze(-1) + self.user_gate * personal
        pop_tok = com + self.popular_slots(batch["slot_ids"], batch["mask"])
        pop = self.popular(torch.cat([pop_tok, post.unsqueeze(1).expand_as(com)], -1)).squeeze(-1)
        return {"main": self.main(h).squeeze(-1), "correction": self.correction(h).squeeze(-1), "user_scores": user_scores, "popular_scores": pop}


class EngagementModel:
    """`fit(train, valid)` → `predict(inputs)` with engagement (minutes), P(long), and both comment rankings."""

    def __init__(self, config: EngagementConfig | None = None, *, checkpoint_dir: str | None = None) -> None:
        self.config = config or EngagementConfig()
        self.checkpoint_dir = checkpoint_dir  # a checkpoint per epoch here: a killed fit resumes from the last one
        self.module_: EngagementModule | None = None
        self.weight_scale_: float = 1.0
        self.history_: list[dict[str, float]] = []
        self.best_epoch_: int | None = None  # the epoch kept (best valid AUC); None without a valid split

    def _tables(self, inputs: EngagementInputs) -> dict[str, torch.Tensor | None]:
        cfg = self.config
        if cfg.use_text and (inputs.item_text is None or inputs.comment_text is None):
            raise InvalidInputError("use_text is on but the inputs carry no text embeddings", field="comment_text")
        if cfg.use_labels and inputs.comment_labels is None:
            raise InvalidInputError("use_labels is on but the inputs carry no comment labels", field="comment_labels")
        as_t = lambda a: None if a is None else torch.as_tensor(np.asarray(a, np.float32))  # noqa: E731
        return {"item_text": as_t(inputs.item_text) if cfg.use_text else None, "comment_text": as_t(inputs.comment_text) if cfg.use_text else None,
                "comment_labels": as_t(inputs.comment_labels) if cfg.use_labels else None}

    def _batch(self, inputs: EngagementInputs, rows: np.ndarray, tables: dict[str, torch.Tensor | None]) -> dict[str, torch.Tensor]:
        ci = inputs.comment_index[rows]
        safe = torch.as_tensor(np.maximum(ci, 0))
        b = {"id_fields": torch.as_tensor(inputs.id_fields[rows]), "slot_ids": torch.as_tensor(inputs.slot_ids[rows]),
             "mask": torch.as_tensor(inputs.mask[rows].astype(np.float32))}
        if tables["item_text"] is not None:
            b["item_text"] = tables["item_text"][torch.as_tensor(inputs.item_index[rows])]
            b["comment_text"] = tables["comment_text"][safe]
        if tables["comment_labels"] is not None:
            b["comment_labels"] = tables["comment_labels"][safe]
        return b

    def _losses(self, out: dict[str, torch.Tensor], inputs: EngagementInputs, rows: np.ndarray) -> dict[str, torch.Tensor]:
        cfg = self.config
        bce = nn.functional.binary_cross_entropy_with_logits
        y = torch.as_tensor(inputs.long[rows].astype(np.float32))
        value = torch.as_tensor(inputs.engagement[rows].astype(np.float32))
        weight = torch.where(y > 0, value / self.weight_scale_, torch.ones_like(value))
        mask = torch.as_tensor(inputs.mask[rows])
        losses = {"main": bce(out["main"], y, weight=weight), "correction": bce(out["correction"], y)}
        if cfg.lambda_user > 0:
            rep = torch.as_tensor(inputs.replied[rows].astype(np.float32))
            if cfg.user_loss == "softmax":
                losses["user"] = reply_softmax_loss(out["user_scores"], rep, mask)
            else:
                per = bce(out["user_scores"], rep, reduction="none")
                losses["user"] = (per * mask).sum() / mask.sum().clamp(min=1)
        if cfg.lambda_popular > 0:
            losses["popular"] = list_mle(out["popular_scores"], torch.as_tensor(inputs.upvotes[rows].astype(np.float32)), mask)
        return losses

    def fit(self, train: EngagementInputs, valid: EngagementInputs | None = None, *, progress: bool = False) -> EngagementModel:
        """Trains with the shared `Trainer`: seeded batch order and dropout per epoch, the best
        valid-AUC epoch kept, a time budget, and (with `checkpoint_dir`) resume after a kill."""
        from recsage.evaluation.engagement import auc
        from recsage.recmodels.trainer import Trainer, TrainerConfig

        cfg = self.config
        if cfg.user_loss not in USER_LOSSES:
            raise InvalidInputError(f"unknown user_loss {cfg.user_loss!r}; known: {', '.join(USER_LOSSES)}", field="user_loss")
        set_seed(cfg.seed)
        if not len(train):
            raise InvalidInputError("no training examples", field="train")
        tables = self._tables(train)
        text_dim = None if tables["item_text"] is None else int(tables["item_text"].shape[1])
        label_dim = None if tables["comment_labels"] is None else int(tables["comment_labels"].shape[1])
        self.module_ = EngagementModule(cfg, list(train.id_sizes), list(train.slot_sizes), text_dim, label_dim)
        pos = train.long.astype(bool)
        self.weight_scale_ = float(train.engagement[pos].mean()) if pos.any() else 1.0
        parts: dict[int, dict[str, float]] = {}  # per-epoch means of each loss term, for the history

        def batches(epoch: int):
            order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train))
            for lo in range(0, len(order), cfg.batch_size):
                yield epoch, order[lo : lo + cfg.batch_size]

        def loss(module: nn.Module, batch: tuple[int, np.ndarray]) -> torch.Tensor:
            epoch, rows = batch
            losses = self._losses(module(self._batch(train, rows, tables)), train, rows)
            sums = parts.setdefault(epoch, {})
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(rows) / len(train)
            return losses["main"] + losses["correction"] + cfg.lambda_user * losses.get("user", 0.0) + cfg.lambda_popular * losses.get("popular", 0.0)

        def validate() -> float:
            return auc(self.predict(valid)["engagement"], valid.long)

        has_valid = valid is not None and len(valid) > 0
        result = Trainer(
            self.module_,
            TrainerConfig(epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay, patience=cfg.patience or cfg.epochs, seed=cfg.seed,
                          progress=progress, checkpoint_dir=self.checkpoint_dir, max_seconds=cfg.time_budget_seconds),
            batches=batches, loss=loss, validate=validate if has_valid else None,
        ).fit()
        self.train_result_ = result
        self.history_ = [{"epoch": r["epoch"] + 1, "loss": round(r["loss"], 5), **{f"loss_{k}": round(v, 5) for k, v in parts.get(r["epoch"], {}).items()},
                          "seconds": r["seconds"], **({"valid_auc": round(r["valid"], 5)} if "valid" in r else {})} for r in result.history]
        self.best_epoch_ = result.best_epoch + 1 if has_valid and result.best_epoch >= 0 else None
        return self

    @torch.no_grad()
    def predict(self, inputs: EngagementInputs, batch_size: int = 4096) -> dict[str, np.ndarray]:
        if self.module_ is None:
            from recsage.core.errors import NotFittedError

            raise NotFittedError("EngagementModel is not fitted: call fit or from_pretrained first")
        self.module_.eval()
        tables = self._tables(inputs)
        parts: dict[str, list[np.ndarray]] = {"main": [], "correction": [], "user_scores": [], "popular_scores": []}
        for lo in range(0, len(inputs), batch_size):
            rows = np.arange(lo, min(lo + batch_size, len(inputs)))
            out = self.module_(self._batch(inputs, rows, tables))
            for k in parts:
                parts[k].append(out[k].numpy())
        res = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
        p, pc = 1 / (1 + np.exp(-res["main"])), 1 / (1 + np.exp(-res["correction"]))
        res["engagement"] = self.weight_scale_ * np.exp(res["main"]) * (1 - pc)  # σ(p)/(1−σ(p)) = e^p
        res["p_long"] = pc
        res["p_main"] = p
        return res

    # ---- persistence: config.json + model.safetensors (tables are not saved; see the module docstring) ----
    def save_pretrained(self, directory: str | Path, *, sizes: dict[str, Any]) -> Path:
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.module_.state_dict().items()}, str(d / "model.safetensors"))
        (d / "config.json").write_text(json.dumps({"class": "EngagementModel", "format_version": FORMAT_VERSION, "config": self.config.to_dict(),
                                                   "weight_scale": self.weight_scale_, "sizes": sizes, "history": self.history_}, indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> EngagementModel:
        from safetensors.torch import load_file

        d = Path(directory)
        meta = read_saved_meta(d, "EngagementModel", FORMAT_VERSION, what="engagement model")
        model = cls(EngagementConfig.from_dict(meta["config"]))
        s = meta["sizes"]
        model.module_ = EngagementModule(model.config, s["id_sizes"], s["slot_sizes"], s.get("text_dim"), s.get("label_dim"))
        model.module_.load_state_dict(load_file(str(d / "model.safetensors")))
        model.weight_scale_ = float(meta["weight_scale"])
        model.history_ = meta.get("history", [])
        return model
