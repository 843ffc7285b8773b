"""`recsage onereason …`: grounded chains of thought, SFT export, the thinking model, explanations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from recsage.cli.main import (
    ACTORS_OPT, BACKEND_OPT, CPUS_OPT, ENGINE_OPT, GPUS_OPT, MODEL_OPT, RAY_ADDRESS_OPT, URL_OPT, _engine_config,
    _llm_config, _parse_params, _print_rows, app, clean_errors, console,
)

onereason_app = typer.Typer(help="OneReason: three-level chains of thought derived from histories, verified LLM wording, SFT data, "
                                 "and a generative SID model that thinks before it recommends.", no_args_is_help=True)
app.add_typer(onereason_app, name="onereason")
DATA_OPT = typer.Option(..., "--data", help="prepared dataset folder")


@onereason_app.command("build-cot")
@clean_errors
def build_cot_cmd(
    data: Path = DATA_OPT, out: Path = typer.Option(..., "--out", help="chain folder (chains.parquet, meta.json)"),
    interest_key: str = typer.Option("category", "--interest-key", help="category | sid (first Semantic-ID code; needs --sid)"),
    sid: Optional[Path] = typer.Option(None, "--sid", help="SID folder (for --interest-key sid)"),
    n_interests: int = typer.Option(3, "--interests", min=1, max=10),
    verbalise: int = typer.Option(0, "--verbalise", min=0, help="chains the LLM puts into words (verified; resumable)"),
    hindsight: bool = typer.Option(False, "--hindsight", help="the verbaliser also sees the target (flagged; never for evaluation)"),
    backend: Optional[str] = BACKEND_OPT, model: Optional[str] = MODEL_OPT, base_url: Optional[str] = URL_OPT,
    engine: str = ENGINE_OPT, ray_address: Optional[str] = RAY_ADDRESS_OPT, actors: int = ACTORS_OPT,
    cpus_per_actor: float = CPUS_OPT, gpus_per_actor: float = GPUS_OPT,
) -> None:
    """Derive a chain (induction → abduction → deduction) per training sequence; optionally verbalise some."""
    from recsage.pipelines.onereason import build_cot, verbalise_chains

    meta = build_cot(data, out, interest_key=interest_key, sid=sid, n_interests=n_interests)
    console.print(f"{meta['chains']} chains → {out / 'chains.parquet'}; rejected: {meta['rejected'] or 'none'}")
    if verbalise:
        run = verbalise_chains(data, out, limit=verbalise, hindsight=hindsight, llm=_llm_config(backend, model, base_url, None, False),
                               engine=_engine_config(engine, ray_address, actors, cpus_per_actor, gpus_per_actor))
        console.print(f"verbalised with {run['model']}: {run['statuses']}; {run['chains_per_minute']} chains/min")


@onereason_app.command("export-sft")
@clean_errors
def export_sft_cmd(
    data: Path = DATA_OPT, sid: Path = typer.Option(..., "--sid", help="SID folder from `recsage sid fit`"),
    cot: Path = typer.Option(..., "--cot", help="chain folder from `recsage onereason build-cot`"),
    out: Path = typer.Option(..., "--out"),
    perception_limit: Optional[int] = typer.Option(None, "--perception-limit", min=0, help="items in the SID ↔ title tasks (default all)"),
) -> None:
    """Chat records (JSONL + Parquet): SID ↔ title perception tasks and history → <think> → SID reasoning."""
    from recsage.pipelines.onereason import export_sft

    stats = export_sft(data, sid, cot, out, perception_limit=perception_limit)
    console.print_json(json.dumps(stats))


@onereason_app.command("train")
@clean_errors
def train_cmd(
    data: Path = DATA_OPT, sid: str = typer.Option(..., "--sid", help="SID folder, or published:<index>"), out: Path = typer.Option(..., "--out"),
    thought: str = typer.Option("full", "--thought", help="full (three levels) | induction (one level) | shuffled (ungrounded ablation)"),
    seed: int = typer.Option(0, "--seed"),
    set_: list[str] = typer.Option([], "--set", help="config override, e.g. --set epochs=6 --set nothink_fraction=0.25"),
) -> None:
    """Train the thinking SID model (resumes from OUT/checkpoints); score think / grounded / nothink / race from the same weights."""
    from recsage.pipelines.onereason import train_thinking

    _, row = train_thinking(data, sid, out, thought=thought, seed=seed, **_parse_params(set_))
    rows = [{"mode": m, **v} for m, v in row["modes"].items()]
    _print_rows(rows, ["mode", "recall@1", "recall@5", "recall@10", "ndcg@10"], f"thinking model ({thought} chain) on {data}")
    console.print(f"[green]saved[/] {out}")


@onereason_app.command("explain")
@clean_errors
def explain_cmd(
    model: Path = typer.Option(..., "--model", help="OUT/model of `recsage onereason train`"), data: Path = DATA_OPT,
    user: int = typer.Option(..., "--user", help="user id of the prepared dataset (history = all their interactions)"),
    k: int = typer.Option(5, "--k", min=1, max=100),
    llm_text: bool = typer.Option(False, "--llm-text", help="word the chain with the LLM (verified) instead of the template"),
    backend: Optional[str] = BACKEND_OPT,
    model_name: Optional[str] = typer.Option(None, "--llm-model", help="embedded: default|small; openai/vllm: model name; llamacpp: GGUF path"),
    base_url: Optional[str] = URL_OPT,
) -> None:
    """The chain behind a user's recommendations: derived interests, the model's deduction, its wording, the items."""
    from recsage.pipelines.onereason import explain_user

    llm = _llm_config(backend, model_name, base_url, None, False) if llm_text else None
    r = explain_user(model, data, user, k=k, llm=llm)
    if r["chain"]:
        _print_rows(r["chain"], ["slot", "interest", "count", "dynamics", "examples"], f"user {user}: interests in the history")
        for part, text in r["text"].items():
            console.print(f"{part} ({r['text_status']}): {text}", markup=False, highlight=False)  # catalogue text: no markup
        console.print(f"model's deduction: {r['deduction']}", markup=False, highlight=False)
    _print_rows(r["recommendations"], ["rank", "title", "score"], "recommendations")
