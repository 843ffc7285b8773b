"""Launched by torchrun in the DDP test: 2 CPU processes (gloo) train SASRec on Scientific.

Arguments: output folder, Scientific dataset folder (the test passes the shared data it found).
"""

import sys
from pathlib import Path

import torch

from recsage.datasets import leave_one_out, load_dataset
from recsage.recmodels import SASRec, SASRecConfig
from recsage.recmodels.trainer import dist_info, init_distributed_from_env

if __name__ == "__main__":
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    init_distributed_from_env()
    rank, world = dist_info()
    assert world == 2, world
    sp = leave_one_out(load_dataset("scientific", Path(sys.argv[2])))
    cfg = SASRecConfig(epochs=1, max_steps_per_epoch=6, batch_size=64, dim=32, progress=False)
    m = SASRec(cfg, checkpoint_dir=str(out / "ckpt")).fit(sp.train, sp.valid.subset(torch.arange(100).numpy()))
    (out / f"done-rank{rank}").write_text(str(m.train_result_.history))
    torch.distributed.destroy_process_group()
