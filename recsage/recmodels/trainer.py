"""One training loop for every torch recommender.

Early stopping on a validation metric, a checkpoint after every epoch (resume after a kill
continues from the last finished epoch and reproduces the uninterrupted run: data order and
dropout are seeded per epoch), progress bars, and DistributedDataParallel when launched with
`torchrun` (gloo on CPU, nccl on GPU): each rank takes its shard of every epoch's batches, rank 0
validates and writes checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from recsage.core.heartbeat import heartbeat


@dataclass(frozen=True)
class TrainerConfig:
    epochs: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 5  # epochs without validation improvement before stopping
    eval_every: int = 1
    seed: int = 0
    max_steps_per_epoch: int | None = None
    progress: bool = True
    checkpoint_dir: str | None = None
    max_seconds: float | None = None  # time budget: stop mid-epoch when crossed, then validate and checkpoint
    schedule: str = "constant"  # "constant" | "cosine" (decays to min_lr_ratio·lr over `epochs`)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    best_epoch: int = -1
    best_metric: float = float("-inf")
    epochs_run: int = 0
    resumed_from: int | None = None
    prior_seconds: float = 0.0  # training time of the killed attempts this run resumed (counted in `seconds`)
    stopped_by_time: bool = False
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


SCHEDULES = ("constant", "cosine")


def lr_at(config: TrainerConfig, step: int, total_steps: int) -> float:
    """Learning rate as a pure function of the global step: a resumed run continues the exact
    schedule of the uninterrupted one with no scheduler state to checkpoint."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    progress = min(1.0, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps))
    floor = config.min_lr_ratio
    return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def init_distributed_from_env() -> bool:
    """Initialises the process group when started by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
        return True
    return False


class Trainer:
    """`batches(epoch) -> iterable of batches`, `loss(module, batch) -> scalar`,
    `validate() -> float` (higher is better, e.g. NDCG@10)."""

    def __init__(
        self,
        module: nn.Module,
        config: TrainerConfig,
        *,
        batches: Callable[[int], Iterable[Any]],
        loss: Callable[[nn.Module, Any], torch.Tensor],
        validate: Callable[[], float] | None = None,
    ) -> None:
        self.module = module
        self.config = config
        self.batches = batches
        self.loss = loss
        self.validate = validate

    def _paths(self) -> tuple[Path, Path] | None:
        if not self.config.checkpoint_dir:
            return None
        d = Path(self.config.checkpoint_dir)
        d.mkdir(parents=True, exist_ok=True)
        return d / "last.pt", d / "best.pt"

    def fit(self) -> TrainResult:
        c = self.config
        if c.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {c.schedule!r}; known: {', '.join(SCHEDULES)}")
        rank, world = dist_info()
        model: nn.Module = self.module
        if world > 1:
            model = nn.parallel.DistributedDataParallel(self.module)
        opt = _adamw(self.module, c)
        res = TrainResult()
        start_epoch, bad_epochs = 0, 0
        best_state = None
        paths = self._paths()
        if paths and paths[0].exists():
            try:
                ck = torch.load(paths[0], weights_only=True)
                self.module.load_state_dict(ck["model"])
                opt.load_state_dict(ck["optimizer"])
                meta = json.loads(ck["meta"])
            except Exception as e:  # garbage, truncated, or another model's checkpoint
                from recsage.core.errors import InvalidInputError

                raise InvalidInputError(f"cannot resume from this checkpoint ({type(e).__name__}: {str(e)[:160]}); "
                                        "remove the checkpoints folder to train from scratch", file=str(paths[0])) from None
            start_epoch, bad_epochs = meta["epoch"] + 1, meta["bad_epochs"]
            res.best_epoch, res.best_metric, res.history = meta["best_epoch"], meta["best_metric"], meta["history"]
            res.resumed_from = meta["epoch"]
            res.epochs_run = len(res.history)  # the whole run's epochs, as a run never killed would report
            if paths[1].exists():
                best_state = torch.load(paths[1], weights_only=True)
        # a resumed run counts the time its killed predecessors trained (for its report and its budget)
        res.prior_seconds = json.loads(ck["meta"]).get("seconds", 0.0) if res.resumed_from is not None else 0.0
        t0 = time.perf_counter() - res.prior_seconds
        state: dict[str, Any] = {"epoch": start_epoch, "step": 0, "steps": 0, "loss": float("nan")}
        status = lambda: f"training: epoch {state['epoch'] + 1}/{c.epochs}, step {state['step']}/{state['steps']}, loss {state['loss']:.4f}"  # noqa: E731
        with heartbeat(status, enabled=not c.progress and rank == 0):  # a line every 30 s when no bar shows
            for epoch in range(start_epoch, c.epochs):
                torch.manual_seed(c.seed * 100_003 + epoch)  # dropout stream depends only on (seed, epoch)
                model.train()
                total, n = 0.0, 0
                batches = list(self.batches(epoch))
                batches = batches[: len(batches) // world * world][rank::world]  # equal counts: DDP ranks must step together
                if c.max_steps_per_epoch:
                    batches = batches[: c.max_steps_per_epoch]
                bar = tqdm(batches, desc=f"epoch {epoch}", unit="batch", disable=not c.progress or rank != 0, leave=False)
                state.update(epoch=epoch, steps=len(batches))
                for i, batch in enumerate(bar):
                    lr = lr_at(c, epoch * len(batches) + i, c.epochs * len(batches))
                    for group in opt.param_groups:
                        group["lr"] = lr
                    loss = self.loss(model, batch)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.item()
                    n += 1
                    state.update(step=n, loss=total / n)
                    bar.set_postfix(loss=f"{total / n:.4f}")
                    # checked after every step, so a slow model (a TIGER-size encoder-decoder's Beauty epoch takes
                    # ~18 minutes on 2 CPU cores) cannot overrun its budget by most of an epoch; under DDP every 16
                    # steps, since the ranks must leave the loop at the same step
                    if c.max_seconds and (world == 1 or i % 16 == 15) and _over_budget(t0, c.max_seconds):
                        res.stopped_by_time = True
                        break
                row = {"epoch": epoch, "loss": total / max(n, 1), "seconds": round(time.perf_counter() - t0, 1)}
                if n < len(batches):
                    row["partial"] = n / len(batches)  # the budget ran out inside this epoch
                stop = res.stopped_by_time
                if self.validate is not None and (epoch + 1) % c.eval_every == 0:
                    self.module.eval()
                    metric = self.validate() if rank == 0 else 0.0
                    metric = _broadcast(metric)
                    row["valid"] = metric
                    if metric > res.best_metric:
                        res.best_metric, res.best_epoch, bad_epochs = metric, epoch, 0
                        best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
                        if paths and rank == 0:
                            torch.save(best_state, paths[1])
                    else:
                        bad_epochs += 1
                        stop = stop or bad_epochs >= c.patience
                res.history.append(row)
                res.epochs_run += 1
                if c.progress and rank == 0:
                    tqdm.write(json.dumps(row))
                if paths and rank == 0:
                    meta = {"epoch": epoch, "bad_epochs": bad_epochs, "best_epoch": res.best_epoch, "best_metric": res.best_metric, "history": res.history,
                            "seconds": time.perf_counter() - t0}
                    tmp = paths[0].with_suffix(".tmp")
                    torch.save({"model": self.module.state_dict(), "optimizer": opt.state_dict(), "meta": json.dumps(meta)}, tmp)
                    os.replace(tmp, paths[0])  # atomic: a kill never leaves a half-written checkpoint
                if c.max_seconds and _over_budget(t0, c.max_seconds):
                    res.stopped_by_time = True
                    stop = True
                if stop:
                    break
        if best_state is not None:
            self.module.load_state_dict(best_state)
        self.module.eval()
        res.seconds = time.perf_counter() - t0
        return res


def _adamw(module: nn.Module, c: TrainerConfig) -> torch.optim.Optimizer:
    """AdamW's fused kernel where the parameters' device has one (CPU and CUDA in torch ≥ 2.4):
    one pass over the weights instead of a dozen (5–20% of the lazy model's step time on 2 CPU cores)."""
    params = list(module.parameters())
    if all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params):
        try:
            return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay, fused=True)
        except (RuntimeError, TypeError):  # an older torch or a device without the kernel
            pass
    return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)


def _over_budget(t0: float, max_seconds: float) -> bool:
    """Rank 0's clock decides for every rank, so DDP ranks stop together."""
    return _broadcast(float(time.perf_counter() - t0 > max_seconds)) > 0.5


def _broadcast(value: float) -> float:
    rank, world = dist_info()
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    torch.distributed.broadcast(t, src=0)
    return float(t.item())
