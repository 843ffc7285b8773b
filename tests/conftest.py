import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RECSAGE_CACHE", str(Path(__file__).resolve().parents[1] / ".recsage" / "test-cache"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECSAGE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (set RECSAGE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bundled_data() -> Path:
    return REPO / "data"
