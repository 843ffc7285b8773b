"""Structured output on a scripted backend (unit level); the real model is in test_embedded_real."""

import json

from pydantic import BaseModel, Field

from recsage.llm import ScriptedBackend, extract_json, structured


class Tags(BaseModel):
    topics: list[str] = Field(max_length=3)
    confidence: float


def conv(text="x"):
    return [{"role": "user", "content": text}]


def test_extract_json_variants():
    assert extract_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('Sure! Here it is: {"a": [1, 2]} hope that helps') == {"a": [1, 2]}


def test_repair_turn_fixes_invalid_answer():
    backend = ScriptedBackend(["not json at all", '{"topics": ["tools"], "confidence": 0.8}'])
    r = structured(backend, [conv()], Tags)[0]
    assert r.ok and r.value.topics == ["tools"] and r.attempts == 2


def test_repair_prompt_shows_the_error_and_schema():
    seen = []

    def responder(messages):
        seen.append(messages)
        return '{"topics": "oops"}' if len(seen) == 1 else '{"topics": [], "confidence": 1}'

    structured(ScriptedBackend(responder), [conv()], Tags)
    repair = seen[1][-1]["content"]
    assert "does not match the schema" in repair and '"confidence"' in repair


def test_failure_is_returned_not_raised_with_raw_text():
    backend = ScriptedBackend(lambda m: "<xml>nope</xml>")
    results = structured(backend, [conv("a"), conv("b")], Tags, max_retries=1)
    assert [r.ok for r in results] == [False, False]
    assert results[0].raw == "<xml>nope</xml>" and "not valid JSON" in results[0].error
    assert backend.calls == 4  # two records x (first try + one repair)


def test_batch_mixes_successes_and_failures():
    def responder(m):
        return '{"topics": ["a"], "confidence": 0.5}' if "good" in m[0]["content"] else "bad"

    res = structured(ScriptedBackend(responder), [conv("good"), conv("bad"), conv("good")], Tags, max_retries=0)
    assert [r.ok for r in res] == [True, False, True]


def test_raw_json_schema_dict():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    ok = structured(ScriptedBackend(['{"n": 3}']), [conv()], schema)[0]
    assert ok.value == {"n": 3}
    bad = structured(ScriptedBackend(['{"n": "three"}']), [conv()], schema, max_retries=0)[0]
    assert not bad.ok and "n:" in bad.error


def test_schema_limits_enforced():
    r = structured(ScriptedBackend([json.dumps({"topics": list("abcd"), "confidence": 1})]), [conv()], Tags, max_retries=0)[0]
    assert not r.ok
