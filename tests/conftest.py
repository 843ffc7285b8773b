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


@pytest.fixture(scope="session")
def small_gguf():
    from recsage.llm.embedded import SMALL_MODEL, ensure_gguf

    return ensure_gguf(SMALL_MODEL)


@pytest.fixture(scope="session")
def small_llm(small_gguf):
    from recsage.llm.embedded import SMALL_MODEL
    from recsage.llm.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(small_gguf, n_ctx=2048, model_name=SMALL_MODEL)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def embedder():
    from recsage.llm.embed import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def ml100k(shared_data):
    from recsage.datasets.registry import load_dataset

    return load_dataset("movielens-100k", shared_data / "movielens-100k")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def launch_server():
    """`launch(argv_for_port, health_path, what, env=None) -> base URL`: starts a local server on a
    free 127.0.0.1 port, waits for its health URL, and stops it after the module."""
    import subprocess
    import time

    import httpx

    procs = []

    def launch(argv_for_port, health_path: str, what: str, env: dict | None = None, timeout: float = 120) -> str:
        port = free_port()
        proc = subprocess.Popen(argv_for_port(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{base}{health_path}", timeout=2).status_code == 200:
                    return base
            except httpx.HTTPError:
                time.sleep(0.5)
        proc.kill()
        pytest.fail(f"{what} did not start" + (f" (exit {proc.returncode})" if proc.returncode is not None else f" in {timeout:g} s"))

    yield launch
    for proc in procs:
        proc.terminate()
        proc.wait(20)


@pytest.fixture(scope="module")
def fake_llm(launch_server) -> list[str]:
    """CLI flags that point a command at the scripted OpenAI-compatible server of `_fake_openai.py`
    (made-up, schema-valid answers after 50 ms: for tests of job mechanics, never of quality)."""
    import sys

    base = launch_server(lambda port: [sys.executable, str(REPO / "tests" / "_fake_openai.py"), str(port), "0.05"], "/v1/models",
                         "scripted OpenAI server", timeout=30)
    return ["--backend", "openai", "--base-url", f"{base}/v1", "--model", "fake"]


@pytest.fixture(scope="module")
def ray_address():
    """A real two-CPU Ray cluster started with `ray start --head` (what a user's cluster is), with
    Ray's token authentication on: the cluster, this driver and the child drivers share the token."""
    import subprocess
    import sys

    ray = pytest.importorskip("ray")
    port = free_port()
    ray_cli = str(Path(sys.executable).parent / "ray")
    subprocess.run([ray_cli, "get-auth-token", "--generate"], check=True, capture_output=True, timeout=60)
    subprocess.run([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                    "--disable-usage-stats"], check=True, capture_output=True, timeout=180)
    yield f"127.0.0.1:{port}"
    if ray.is_initialized():
        ray.shutdown()
    subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120)


@pytest.fixture
def unused_port() -> int:
    return free_port()


def scripted_comment_labels(messages) -> str:
    """A scripted teacher for unit tests: a fixed rule on the comment text, not an LLM."""
    import json

    text = messages[-1]["content"].split('<data name="comment">')[-1].lower()
    return json.dumps({"kind": "question" if "?" in text else "answer", "sentiment": "positive" if "thank" in text or "!" in text else "neutral",
                       "stance": "neutral", "informative": 2 if len(text) > 200 else 0, "humor": "lol" in text, "relevance": 2,
                       "topics": ["essays"] if "essay" in text else ["other"]})


@pytest.fixture(scope="session")
def lcu_work(shared_data, tmp_path_factory):
    """An LCU work folder on the 150 most recent real Reddit threads: scripted teacher labels
    (unit-test only), the real student, a one-epoch engagement model."""
    from recsage.datasets.comment_sections import SectionConfig
    from recsage.knowledge.lcu.annotate import CommentAnnotator, annotate_comments_batch
    from recsage.llm.scripted import ScriptedBackend
    from recsage.pipelines.lcu import lcu_distill, lcu_train, teacher_sample, work_sections
    from recsage.recmodels.engagement import EngagementConfig

    out = tmp_path_factory.mktemp("lcu") / "a2c"
    data = shared_data / "reddit-college-comments"
    sections = work_sections(data, out, config=SectionConfig(max_threads=150))
    annotate_comments_batch(CommentAnnotator(ScriptedBackend(scripted_comment_labels)), teacher_sample(sections, 60), out / "teacher", progress=False)
    lcu_distill(data, out)
    lcu_train(data, out, EngagementConfig(epochs=1), progress=False)
    return out
