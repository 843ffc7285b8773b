"""A bad JSON Schema for structured output is refused before any generation (CLI and workbench)."""

import json

import pytest
from typer.testing import CliRunner

from recsage.cli.main import app

runner = CliRunner()
OK = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}, "required": ["tags"]}
CASES = [  # (name, schema text, what the message must say)
    ("unknown_type", json.dumps({"type": "object", "properties": {"a": {"type": "strng"}}}), "not a valid JSON Schema"),
    ("properties_not_object", json.dumps({"type": "object", "properties": ["a", "b"]}), "not a valid JSON Schema"),
    ("top_level_array", json.dumps([OK]), "a JSON Schema is an object, got a JSON list"),
    ("array_type", json.dumps({"type": "array", "items": {"type": "string"}}), 'needs "type": "object"'),
    ("dangling_ref", json.dumps({**OK, "properties": {"tags": {"$ref": "#/$defs/missing"}}}), "points to nothing"),
    ("remote_ref", json.dumps({**OK, "properties": {"tags": {"$ref": "https://example.com/s.json"}}}), "nothing is fetched"),
    ("not_json", '{"type": "object",', "invalid JSON"),
]


@pytest.mark.parametrize("name,text,message", CASES, ids=[c[0] for c in CASES])
def test_bad_schema_file_is_refused_before_the_model_runs(tmp_path, name, text, message):
    schema = tmp_path / f"synthetic_{name}.json"
    schema.write_text(text)
    # an unreachable server: had generation started, the error would be a connection error
    r = runner.invoke(app, ["llm", "generate", "--prompt", "tags please", "--schema", str(schema), "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert message in out and schema.name in out, out


def test_a_good_schema_with_a_local_ref_passes_the_check():
    from recsage.pipelines.llm import output_schema

    s = {"type": "object", "$defs": {"tag": {"type": "string"}}, "properties": {"tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}}}}
    assert output_schema("\ufeff" + json.dumps(s), "synthetic.json") == s
