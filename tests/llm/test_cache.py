import multiprocessing as mp

from recsage.llm import CachedBackend, GenerationParams, LLMCache, ScriptedBackend


def test_cache_skips_finished_calls(tmp_path):
    inner = ScriptedBackend(lambda m: m[-1]["content"].upper())
    backend = CachedBackend(inner, LLMCache(tmp_path / "c.sqlite"))
    a = backend.generate(["a", "b"])
    b = backend.generate(["b", "a", "c"])
    assert [c.text for c in a] == ["A", "B"] and [c.text for c in b] == ["B", "A", "C"]
    assert inner.calls == 3 and b[0].cached and not b[2].cached
    # params and schema are part of the key
    backend.generate(["a"], GenerationParams(max_tokens=5))
    backend.chat([[{"role": "user", "content": "a"}]], json_schema={"type": "object"})
    assert inner.calls == 5
    stats = LLMCache(tmp_path / "c.sqlite").stats()
    assert stats["entries"] == 5
    assert LLMCache(tmp_path / "c.sqlite").clear() == 5


def _writer(path, prefix, n):
    backend = CachedBackend(ScriptedBackend(lambda m: "x"), LLMCache(path))
    for i in range(n):
        backend.generate([f"{prefix}-{i}"])


def test_concurrent_writers(tmp_path):
    path = tmp_path / "c.sqlite"
    LLMCache(path)
    procs = [mp.get_context("spawn").Process(target=_writer, args=(str(path), p, 40)) for p in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert LLMCache(path).stats()["entries"] == 120
