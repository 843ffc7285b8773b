import sys
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def keep_main_module():
    """AppTest leaves the last page as `__main__`; a later test that spawns processes
    (multiprocessing re-runs `__main__` in the child) would then run a page script bare."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def seed_role_graph(ml100k):
    return lambda workspace: _seed(Path(workspace), ml100k)


def _seed(workspace: Path, ml100k) -> Path:
    """A role graph from real MovieLens rows (genres + profiles; synthetic LLM roles) in the workspace."""
    from recsage.knowledge.tagcf.extract import tags_from_metadata
    from recsage.knowledge.tagcf.graph import RoleGraph
    from recsage.pipelines.tagcf import seed_vocabularies, user_role_labels

    topics, roles = seed_vocabularies(ml100k)
    tags = tags_from_metadata(ml100k.items, topics).assign(roles=lambda d: [["writer"] if "Drama" in t else [] for t in d["topics"]])
    out = workspace / "tagcf" / "ml100k" / "graph"
    RoleGraph.build(roles.names, topics.names, tags, ml100k.interactions, user_role_labels(ml100k)).save(out)
    return out
