"""`recsage features …` (feature tables, Feast) and `recsage rank …` (the ranking stage)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from recsage.cli.main import (
    ACTORS_OPT, CPUS_OPT, ENGINE_OPT, GPUS_OPT, RAY_ADDRESS_OPT, _engine_config, _print_rows, app, clean_errors, console,
)

features_app = typer.Typer(help="Versioned item/user feature tables and their Feast repository.", no_args_is_help=True)
app.add_typer(features_app, name="features")
rank_app = typer.Typer(help="Ranking stage: retrievers → candidates → features → LightGBM LambdaRank.", no_args_is_help=True)
app.add_typer(rank_app, name="rank")


@features_app.command("build")
@clean_errors
def features_build(
    data: Path = typer.Option(..., "--data", help="prepared dataset folder"),
    out: Path = typer.Option(..., "--out"),
    sid: Optional[str] = typer.Option(None, "--sid", help="codebook folder from `recsage sid fit` (or published:<index>)"),
    tags: Optional[Path] = typer.Option(None, "--tags", help="TagCF folder from `recsage tagcf extract`"),
    reward: Optional[Path] = typer.Option(None, "--reward", help="reward model folder from `recsage push train-reward`"),
    lcu: Optional[Path] = typer.Option(None, "--lcu", help="LCU work folder (`recsage lcu distill`): comment-section aggregates per item"),
    cot: Optional[Path] = typer.Option(None, "--cot", help="OneReason chain folder (`recsage onereason build-cot`): per-user interests, dynamics, next interest"),
    protocol: str = typer.Option("loo", "--protocol", help="split whose training part the features come from"),
    text: Optional[bool] = typer.Option(None, "--text/--no-text", help="MiniLM text embeddings (default: when items have text)"),
) -> None:
    """Item and user tables (Parquet) + manifest.json, from the training split only."""
    from recsage.pipelines.features import build_features

    m = build_features(data, out, protocol=protocol, sid=sid, tags=tags, reward=reward, lcu=lcu, cot=cot, text=text)
    rows = [{"group": g, "component": v.get("component"), "columns": len(v.get("columns", []))} for g, v in m["groups"].items()]
    rows += [{"group": g, "component": f"absent: {why}", "columns": 0} for g, why in m["absent"].items()]
    _print_rows(rows, ["group", "component", "columns"], f"features of {m['dataset']}: {m['rows']['items']} items, {m['rows']['users']} users")
    console.print(f"[green]saved[/] {out}")


@features_app.command("build-users")
@clean_errors
def features_build_users(
    features: Path = typer.Option(..., "--features", help="folder from `recsage features build` (its item table and manifest are used)"),
    shards: Path = typer.Option(..., "--shards", help="training histories from `recsage rank write-shards --queries train`"),
    out: Path = typer.Option(..., "--out", help="output folder: users/<shard>.parquet, manifest.json, the resumable job"),
    engine: str = ENGINE_OPT, ray_address: Optional[str] = RAY_ADDRESS_OPT, actors: int = ACTORS_OPT,
    cpus_per_actor: float = CPUS_OPT, gpus_per_actor: float = GPUS_OPT,
) -> None:
    """The user feature table one shard at a time (beyond one machine's memory); resumable; on Ray with --engine ray."""
    from recsage.pipelines.shards import build_user_feature_shards

    res = build_user_feature_shards(features, shards, out, engine=_engine_config(engine, ray_address, actors, cpus_per_actor, gpus_per_actor))
    console.print(f"{res['users']} users in {res['new_ok']} new shards ({res['skipped_done']} already done, {res['new_failed']} failed: "
                  f"{res['failure_reasons'] or 'none'}) → {out / 'users'}")


@features_app.command("info")
@clean_errors
def features_info(path: Path = typer.Argument(..., help="folder from `recsage features build`")) -> None:
    """Groups, absent signals and the schema of a feature folder."""
    from recsage.pipelines.features import feature_summary

    s = feature_summary(path)
    console.print(f"{s['dataset']}: {s['rows']}; absent: {s['absent']}")
    _print_rows(s["schema"], ["table", "column", "type", "group", "source", "meaning"], "schema")


@features_app.command("feast-repo")
@clean_errors
def features_feast_repo(
    repo: Path = typer.Argument(..., help="new folder for the Feast repository"),
    features: Path = typer.Option(..., "--features", help="folder from `recsage features build`"),
) -> None:
    """Write a Feast repository (entities, FileSources, FeatureViews, feature_store.yaml) over the tables."""
    from recsage.pipelines.features import write_feast_repo

    res = write_feast_repo(features, repo)
    console.print(f"[green]wrote[/] {res['repo']}: {', '.join(res['feature_views'])}")
    if res["skipped_columns"]:
        console.print(f"[yellow]columns Feast cannot hold, left out:[/] {res['skipped_columns']}")
    console.print(f"next: {res['next']}")


@rank_app.command("train")
@clean_errors
def rank_train(
    data: Path = typer.Option(..., "--data", help="prepared dataset folder"),
    retrievers: str = typer.Option("itemknn", "--retrievers", help="fitted here: itemknn, popularity, cfknn, textknn, textnext (the text ones need --features with text); saved models as NAME:DIR, e.g. sasrec:work/sasrec"),
    features: Optional[Path] = typer.Option(None, "--features", help="folder from `recsage features build` (behaviour-only without it)"),
    out: Path = typer.Option(..., "--out"),
    candidates: int = typer.Option(100, "--candidates", min=1, help="top-N per retriever; their union is ranked"),
    groups: str = typer.Option("behaviour,sid,text,tagcf,reward", "--groups", help="feature groups the ranker may use"),
    select_groups: bool = typer.Option(False, "--select-groups", help="drop the groups that lower 3-fold NDCG@10 on the validation queries"),
    rounds: int = typer.Option(0, "--rounds", min=0, help="boosting rounds of the compact ranker (under 5,000 usable queries); 0 = chosen by 3-fold CV"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """LambdaRank on validation queries, scored on test queries (loo two-stage protocol)."""
    from recsage.pipelines.ranking import train_ranking

    _, row = train_ranking(data, retrievers, features=features, out=out, n_candidates=candidates,
                           groups=[g.strip() for g in groups.split(",") if g.strip()], seed=seed, select_groups=select_groups,
                           ranker={"compact_rounds": rounds})
    if row["group_selection"]:
        dropped = [g for g in row["group_selection"][0]["groups"] if g not in row["groups_kept"]]
        console.print(f"groups kept on validation: {', '.join(row['groups_kept'])}; dropped: {', '.join(dropped) or 'none'}")
    _print_rows([row], ["retrievers", "recall@5", "ndcg@5", "recall@10", "ndcg@10", f"candidate_recall@{candidates}", "train_seconds"],
                f"two-stage on {data}")
    console.print(f"feature-group gain: {', '.join(f'{g} {v:.0%}' for g, v in row['group_importance'].items())}")
    console.print(f"[green]saved[/] {out / 'model'}")


@rank_app.command("explain")
@clean_errors
def rank_explain(
    model: Path = typer.Option(..., "--model", help="OUT/model from `recsage rank train`"),
    data: Path = typer.Option(..., "--data"),
    user: int = typer.Option(..., "--user"),
    k: int = typer.Option(10, "--k", min=1),
) -> None:
    """The ranker's top-K for one user and why (per-feature contributions)."""
    from recsage.pipelines.ranking import explain_for_user

    res = explain_for_user(model, data, user, k)
    console.print(f"[bold]user {user}[/] recent history: {res['history']}")
    _print_rows(res["recommendations"], ["rank", "item_id", "title", "score", "why"], "ranked")


@rank_app.command("write-shards")
@clean_errors
def rank_write_shards(
    data: Path = typer.Option(..., "--data", help="prepared dataset folder"),
    out: Path = typer.Option(..., "--out", help="Parquet directory of user histories (user_id, history)"),
    n_shards: int = typer.Option(8, "--shards", min=1),
    queries: str = typer.Option("test", "--queries", help="test | valid (for `rank recommend-shards`) | train (for `features build-users`)"),
) -> None:
    """A split's histories as a Parquet directory partitioned by user (input of `rank recommend-shards` / `features build-users`)."""
    from recsage.pipelines.shards import write_history_shards

    res = write_history_shards(data, out, n_shards=n_shards, queries=queries)
    console.print(f"{res['users']} users in {res['shards']} shards → {res['dir']}")


@rank_app.command("recommend-shards")
@clean_errors
def rank_recommend_shards(
    model: Path = typer.Option(..., "--model", help="OUT/model from `recsage rank train`"),
    shards: Path = typer.Option(..., "--shards", help="Parquet directory of user histories (user_id, history), one file per shard"),
    out: Path = typer.Option(..., "--out", help="output folder: recs/<shard>.parquet + the resumable job"),
    k: int = typer.Option(10, "--k", min=1),
    engine: str = ENGINE_OPT, ray_address: Optional[str] = RAY_ADDRESS_OPT, actors: int = ACTORS_OPT,
    cpus_per_actor: float = CPUS_OPT, gpus_per_actor: float = GPUS_OPT,
) -> None:
    """Top-K for every user, one shard in memory at a time; resumable; on Ray with --engine ray."""
    from recsage.pipelines.shards import recommend_shards

    res = recommend_shards(model, shards, out, k=k, engine=_engine_config(engine, ray_address, actors, cpus_per_actor, gpus_per_actor))
    console.print(f"{res['users']} users in {res['new_ok']} new shards ({res['skipped_done']} already done, {res['new_failed']} failed: "
                  f"{res['failure_reasons'] or 'none'}) → {out / 'recs'}")
