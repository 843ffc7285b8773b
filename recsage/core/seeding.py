"""One call to make runs repeatable across numpy, random and (if loaded) torch."""

from __future__ import annotations

import os
import random
import sys

import numpy as np


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
