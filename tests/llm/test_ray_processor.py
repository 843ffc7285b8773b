"""The processor path of the ray engine: components' `PromptTask`s through Ray's own LLM stages.

Ray's HTTP stage runs for real here, against a llama.cpp server on 127.0.0.1 serving the embedded
0.5B (the same stage posts to `vllm serve` or a hosted API); its outputs must equal the component's
own path on the same server. Ray's vLLM stage needs GPUs: its configuration and rows are checked,
and asking for it on this CPU cluster is a clear error before anything is written.
"""

import json
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from typer.testing import CliRunner  # noqa: E402

from recsage.cli.main import app  # noqa: E402
from recsage.knowledge.tagcf.extract import ItemTagger, TagTask, tag_items_batch  # noqa: E402
from recsage.knowledge.tagcf.vocab import seed_vocabulary  # noqa: E402
from recsage.llm import EngineConfig, EngineError  # noqa: E402
from recsage.llm.registry import LLMConfig, stage_for  # noqa: E402
from recsage.llm.scripted import ScriptedBackend  # noqa: E402

runner = CliRunner()
TOPICS = seed_vocabulary("topic", {"field": ["biology", "chemistry", "physics", "lab equipment", "measurement", "safety"]})
ROLES = seed_vocabulary("role", {"who": ["student", "lab technician"]})


def items_frame(bundled_data, n):
    from recsage.datasets.registry import load_dataset

    items = load_dataset("scientific", bundled_data / "scientific-sample").items.head(n)
    return items[["item_id", "title"]].reset_index(drop=True)


def test_task_validates_like_the_component():
    """`finish` applies the component's schema and normalisation; a record that cannot be prompted fails in `requests`."""
    tagger = ItemTagger(ScriptedBackend(lambda m: "{}"), TOPICS, ROLES)
    task = TagTask(tagger)
    [req] = task.requests({"item_id": 3, "title": "Beaker set"})
    assert req.json_schema == tagger._schema and '<data name="item">' in req.messages[-1]["content"]
    ok = task.finish({"item_id": 3}, 0, '{"topics": ["chemistry", "chemistry"], "roles": ["student"], "confidence": 0.5}')
    assert ok == {"topics": ["chemistry"], "roles": ["student"], "confidence": 0.5}
    with pytest.raises(Exception, match="tagging failed.*topics"):
        task.finish({"item_id": 3}, 0, '{"topics": ["cooking"], "roles": [], "confidence": 0.5}')
    with pytest.raises(Exception, match="no title"):
        task.requests({"item_id": 4, "title": ""})


def test_stage_for_picks_rays_own_stage_only_for_engine_backends():
    ray_eng = EngineConfig(engine="ray", actors=4, gpus_per_actor=2)
    assert stage_for(EngineConfig(), LLMConfig(backend="vllm", model="/m")) is None
    assert stage_for(ray_eng, LLMConfig(backend="embedded")) is None  # one llama.cpp per actor instead
    assert stage_for(ray_eng, LLMConfig(backend="openai", base_url="http://h:8000/v1", model="q")).kind == "openai"
    vllm = stage_for(ray_eng, LLMConfig(backend="vllm", model="/models/qwen2.5-1.5b-instruct"))
    assert (vllm.settings.replicas, vllm.settings.tensor_parallel_size) == (4, 2)


def test_vllm_stage_configuration_for_a_gpu_cluster():
    """Ray's vLLM processor is built (not run: no GPU here) from a component's task; rows carry vLLM structured output."""
    from ray.data.llm import build_processor

    from recsage.llm.ray_vllm import VLLMProcessorSettings, VLLMStage

    stage = stage_for(EngineConfig(engine="ray", actors=4, gpus_per_actor=2),
                      LLMConfig(backend="vllm", model="/models/qwen2.5-1.5b-instruct", n_ctx=2048))
    cfg = stage.config()
    assert (cfg.model_source, cfg.concurrency) == ("/models/qwen2.5-1.5b-instruct", 4)
    assert cfg.engine_kwargs["tensor_parallel_size"] == 2 and cfg.engine_kwargs["max_model_len"] == 2048
    [req] = TagTask(ItemTagger(ScriptedBackend(lambda m: "{}"), TOPICS, ROLES)).requests({"item_id": 7, "title": "Pipette tips, 1000 uL"})
    row = stage.row(req)
    # vLLM >= 0.12: structured output is StructuredOutputsParams(json=...), no guided_* fields
    assert set(row["sampling_params"]) == {"max_tokens", "temperature", "structured_outputs"}
    assert json.loads(row["sampling_params"]["structured_outputs"]["json"]) == req.json_schema
    assert "Pipette" in row["messages"][-1]["content"] and stage.text({"generated_text": "{}"}) == "{}"
    processor = build_processor(cfg, preprocess=lambda r: {**r, **stage.row(req)})
    assert processor.list_stage_names() == ["ChatTemplateStage", "TokenizeStage", "vLLMEngineStage", "DetokenizeStage"]
    assert processor.get_stage_by_name("vLLMEngineStage").fn_constructor_kwargs["engine_kwargs"]["tensor_parallel_size"] == 2
    with pytest.raises(EngineError, match="needs 4 replicas x 2 GPUs = 8 GPUs, but the Ray cluster has 0"):
        stage.check({"CPU": 2.0})
    with pytest.raises(Exception, match="replicas must be at least 1"):
        VLLMStage(VLLMProcessorSettings(model_source="/m", replicas=0))


@pytest.mark.slow
def test_http_stage_tags_items_as_the_component_does(tmp_path, ray_address, server, bundled_data):
    """Real Ray HTTP stage → real server: same tags as the component's own path against the same server; resumes."""
    from recsage.llm.openai_http import OpenAICompatibleBackend

    items = items_frame(bundled_data, 4)
    llm = LLMConfig(backend="openai", base_url=server, model="small", json_mode="json_object_schema", cache=False)
    eng = EngineConfig(engine="ray", address=ray_address, actors=1)
    direct = OpenAICompatibleBackend(server, "small", json_mode="json_object_schema", max_concurrency=1)
    local = tag_items_batch(ItemTagger(direct, TOPICS, ROLES), items, tmp_path / "local", progress=False)
    bad = pd.concat([items, pd.DataFrame({"item_id": [999], "title": [""]})], ignore_index=True)
    staged = tag_items_batch(ItemTagger(direct, TOPICS, ROLES), bad, tmp_path / "ray", progress=False, engine=eng, stage=stage_for(eng, llm))
    assert staged.summary.new_ok + staged.summary.new_failed == len(bad)
    cols = ["item_id", "status", "topics", "roles"]
    got = staged.tags.set_index("item_id")
    assert got.loc[999, "status"] == "failed" and "no title" in got.loc[999, "error"]
    pd.testing.assert_frame_equal(local.tags[cols], staged.tags[staged.tags["item_id"] != 999][cols].reset_index(drop=True))
    assert staged.meta["stage"]["stage"] == "openai"
    again = tag_items_batch(ItemTagger(direct, TOPICS, ROLES), bad, tmp_path / "ray", progress=False, engine=eng, stage=stage_for(eng, llm))
    assert again.summary.skipped_done == len(bad) and again.summary.new_ok == 0


@pytest.mark.slow
def test_push_cli_on_rays_http_stage(tmp_path, ray_address, server):
    """`recsage push generate --backend openai --engine ray`: two styles per item through Ray's HTTP
    stage, each answer filtered and ranked in the cluster, one line per item; an unreachable server is a clear error."""
    items = tmp_path / "items.csv"
    items.write_text("item_id,title\n1,Digital pH meter with probe\n2,Nitrile lab gloves\n3,\n")
    argv = ["push", "generate", "--items", str(items), "--out", str(tmp_path / "push.parquet"), "--styles", "curiosity_gap,benefit_led",
            "--n", "2", "--backend", "openai", "--base-url", server, "--model", "small", "--json-mode", "json_object_schema",
            "--engine", "ray", "--ray-address", ray_address, "--actors", "1"]
    r = runner.invoke(app, argv)
    assert r.exit_code == 0, r.output
    frame = pd.read_parquet(tmp_path / "push.parquet")
    meta = json.loads(Path(str(tmp_path / "push.parquet") + ".json").read_text())
    assert meta["stage"]["stage"] == "openai" and meta["new_ok"] == 2 and meta["new_failed"] == 1
    ok = frame[frame["status"] != "failed"]
    assert sorted(ok["style"]) == ["benefit_led", "benefit_led", "curiosity_gap", "curiosity_gap"]
    assert all(len(json.loads(c)) >= 1 for c in ok["candidates"])
    assert "no text" in frame.loc[frame["item_id"] == "3", "error"].iloc[0]
    down = [a if a != server else "http://127.0.0.1:9/v1" for a in argv]
    r = runner.invoke(app, down[:5] + [str(tmp_path / "down.parquet")] + down[6:])
    assert r.exit_code != 0 and "not reachable" in r.output and "Traceback" not in r.output
