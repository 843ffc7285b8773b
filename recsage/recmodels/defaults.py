"""Training defaults chosen from the data, so `recsage train sasrec --data X` works on a dataset
nobody tuned for.

Fixed defaults tuned on Beauty failed elsewhere: on a small new dataset default SASRec collapsed to
a few dozen popular items (too few optimiser steps), and a fixed 200-step warm-up covered a third
of a small run. Here every value the user did not set is derived from the training sequences —
window length from the sequence lengths, batch size and
epochs from the number of optimiser steps the data gives — and returned with the reason, which
the run's report (`metrics.json`) records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recsage.datasets.splits import SequenceSet

# optimiser steps a transformer recommender needs to converge with a cosine schedule (Beauty:
# best validation at ~20-25 epochs of 176 steps; ML-100K and Scientific converge in fewer)
TARGET_STEPS = 4000
MIN_STEPS_PER_EPOCH = 40
GENERATIVE_TARGET_STEPS = 5000  # lazy decoder on Beauty: best validation at epochs 7-10 of 513 steps


@dataclass(frozen=True)
class DataProfile:
    """What the defaults look at: sizes and training-sequence lengths."""

    n_sequences: int
    n_items: int
    n_interactions: int
    mean_length: float
    p90_length: float
    lengths: tuple[int, ...]

    @classmethod
    def of(cls, train: SequenceSet) -> DataProfile:
        lengths = np.array([len(s) for s in train.sequences]) if len(train) else np.zeros(1, dtype=int)
        return cls(len(train), int(train.n_items), int(lengths.sum()), float(lengths.mean()), float(np.percentile(lengths, 90)),
                   tuple(int(n) for n in lengths))

    def windows(self, max_len: int) -> int:
        """Training windows of `max_len` targets (as `sasrec.training_windows` cuts them)."""
        return int(sum(math.ceil((n - 1) / max_len) for n in self.lengths if n >= 2))

    @property
    def interactions_per_item(self) -> float:
        return self.n_interactions / max(self.n_items, 1)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "lengths"}
        return {**d, "mean_length": round(self.mean_length, 1), "interactions_per_item": round(self.interactions_per_item, 1)}


@dataclass(frozen=True)
class Choice:
    value: Any
    reason: str


def sasrec_choices(profile: DataProfile) -> dict[str, Choice]:
    """Every data-dependent SASRec setting with the reason it was chosen."""
    p = profile
    out: dict[str, Choice] = {}
    max_len = int(min(200, max(50, math.ceil(p.p90_length / 10) * 10)))
    out["max_len"] = Choice(max_len, f"90% of training sequences have ≤ {p.p90_length:.0f} items (window 50–200; padding is masked and trimmed, so a long window costs nothing on short histories)")
    # the long GPU recipes use .5 on sparse Beauty; within this step budget .5 converged too slowly
    # (Beauty, 21 epochs: N@10 .0282 at .5 against .031 at .2 after only 6 epochs)
    out["dropout"] = Choice(0.2, f"{p.interactions_per_item:.1f} interactions per item; .5 (the long-training recipe for sparse data) underfits in ≈{TARGET_STEPS} steps")
    windows = max(1, p.windows(max_len))
    batch = 128
    while batch > 16 and windows / batch < MIN_STEPS_PER_EPOCH:
        batch //= 2
    out["batch_size"] = Choice(batch, f"{windows} training windows: the largest of 128, 64, 32, 16 giving ≥ {MIN_STEPS_PER_EPOCH} steps per epoch")
    steps = max(1, math.ceil(windows / batch))
    epochs = int(min(200, max(10, math.ceil(TARGET_STEPS / steps))))
    out["epochs"] = Choice(epochs, f"{steps} steps per epoch: ≈{TARGET_STEPS} optimiser steps in all (10–200 epochs); early stopping ends it sooner")
    out["patience"] = Choice(max(5, epochs // 4), "a quarter of the epochs without validation gain (≥ 5) before stopping")
    out["lr"] = Choice(3e-3, "with a cosine decay over the chosen epochs")
    out["lr_schedule"] = Choice("cosine", "decays to 5% of the peak by the last epoch, so the last epochs refine rather than jump")
    out["warmup_steps"] = Choice(max(10, round(0.03 * steps * epochs)), "3% of all steps (a fixed count would be most of a small run)")
    if p.n_sequences > 10_000:
        out["valid_users"] = Choice(5000, f"{p.n_sequences} validation users: early stopping on a fixed sample of 5,000 (standard error ≈ .002 NDCG@10) saves most of each epoch's validation")
    return out


def lazy_choices(profile: DataProfile) -> dict[str, Choice]:
    """The generative (lazy / TIGER) recipe that reached TIGER's numbers on Beauty, with its step
    counts scaled to the data: one training example per target item."""
    p = profile
    examples = max(1, p.n_interactions - p.n_sequences)
    batch = 256
    while batch > 32 and examples / batch < MIN_STEPS_PER_EPOCH:
        batch //= 2
    steps = max(1, math.ceil(examples / batch))
    epochs = int(min(100, max(5, math.ceil(GENERATIVE_TARGET_STEPS / steps))))
    return {
        "batch_size": Choice(batch, f"{examples} training targets: the largest of 256…32 giving ≥ {MIN_STEPS_PER_EPOCH} steps per epoch"),
        "epochs": Choice(epochs, f"{steps} steps per epoch: ≈{GENERATIVE_TARGET_STEPS} optimiser steps in all (5–100 epochs); early stopping ends it sooner"),
        "patience": Choice(max(4, epochs // 4), "a quarter of the epochs without validation gain (≥ 4)"),
        "lr": Choice(3e-3, "with a cosine decay over the chosen epochs (the Beauty recipe)"),
        "lr_schedule": Choice("cosine", "decays to 5% of the peak by the last epoch"),
        "warmup_steps": Choice(max(10, round(0.03 * steps * epochs)), "3% of all steps (the fixed 200 was a third of a small run)"),
        "dropout": Choice(0.1, "the Beauty recipe; history dropout and label smoothing regularise instead"),
        "history_dropout": Choice(0.15, "each history item but the newest hidden with p=.15 in training (+1–9% N@10 on Beauty)"),
        "label_smoothing": Choice(0.1, "over the trie's valid codes"),
    }


def adapt_params(method: str, train: SequenceSet, given: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`given` (the user's --set values) completed with data-derived defaults; and the report:
    the profile, and for each key its value and why (`"set by you"` when the user chose it)."""
    if method in ("sasrec", "tagcf"):
        rules = sasrec_choices
    elif method in ("lazy", "tiger", "diffgrm", "thinking"):
        rules = lazy_choices
    else:
        return dict(given), {}
    profile = DataProfile.of(train)
    choices = rules(profile)
    params = {**{k: c.value for k, c in choices.items()}, **given}
    report = {"profile": profile.to_dict(),
              "chosen": {k: {"value": params[k], "reason": "set by you" if k in given else c.reason} for k, c in choices.items()}}
    return params, report
