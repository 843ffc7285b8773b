"""`recsage lcu …`: LLM comment understanding and the comment-section engagement model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from recsage.cli.main import (
    ACTORS_OPT, BACKEND_OPT, CPUS_OPT, ENGINE_OPT, GPUS_OPT, MODEL_OPT, RAY_ADDRESS_OPT, URL_OPT, _engine_config,
    _llm_config, _print_rows, app, clean_errors, console,
)

lcu_app = typer.Typer(help="LCU: LLM comment labels (teacher → student) and the engagement model with two comment-ranking tasks.",
                      no_args_is_help=True)
app.add_typer(lcu_app, name="lcu")
DATA_OPT = typer.Option(..., "--data", help="comment data folder (reddit: threads.csv.gz + comments.csv.gz; kuaicomt: the five CSVs)")
OUT_OPT = typer.Option(..., "--out", help="LCU work folder (shared by annotate → distill → train → evaluate)")
SOURCE_OPT = typer.Option("reddit", "--source", help="reddit | kuaicomt")


@lcu_app.command("annotate")
@clean_errors
def lcu_annotate(
    data: Path = DATA_OPT, out: Path = OUT_OPT, source: str = SOURCE_OPT,
    n: int = typer.Option(1000, "--n", help="training comments for the LLM to label (a sample; resumes)"),
    seed: int = typer.Option(0, "--seed"),
    k: Optional[int] = typer.Option(None, "--k", min=1, help="visible comments per example (default 6, or what the folder recorded)"),
    max_threads: Optional[int] = typer.Option(None, "--max-threads", help="keep only the most recent N threads (default: all, or what the folder recorded)"),
    backend: Optional[str] = BACKEND_OPT, model: Optional[str] = MODEL_OPT, base_url: Optional[str] = URL_OPT,
    engine: str = ENGINE_OPT, ray_address: Optional[str] = RAY_ADDRESS_OPT, actors: int = ACTORS_OPT,
    cpus_per_actor: float = CPUS_OPT, gpus_per_actor: float = GPUS_OPT,
) -> None:
    """Teacher: the LLM labels a sample of shown comments (kind, sentiment, stance, informative, humor, relevance, topics)."""
    from recsage.datasets.comment_sections import SectionConfig
    from recsage.pipelines.lcu import annotate_comments, work_sections

    given = {key: v for key, v in (("k", k), ("max_threads", max_threads)) if v is not None}
    sections = work_sections(data, out, source=source, config=SectionConfig(**given) if given else None)
    run = annotate_comments(sections, out / "teacher", n=n, seed=seed, llm=_llm_config(backend, model, base_url, None, False),
                            engine=_engine_config(engine, ray_address, actors, cpus_per_actor, gpus_per_actor))
    s = run.summary.to_dict()
    console.print(f"labelled {s['new_ok']} new, {s['new_failed']} failed, {s['skipped_done']} already done; "
                  f"{run.meta['comments_per_minute']} comments/min with {run.meta['model']}; failures: {s['failure_reasons'] or 'none'}")


@lcu_app.command("distill")
@clean_errors
def lcu_distill_cmd(data: Path = DATA_OPT, out: Path = OUT_OPT, source: str = SOURCE_OPT, seed: int = typer.Option(0, "--seed")) -> None:
    """Student: MiniLM + logistic heads trained on the teacher labels, then every shown comment labelled."""
    from recsage.pipelines.lcu import lcu_distill

    r = lcu_distill(data, out, source=source, seed=seed)
    rows = [{"field": f, **v} for f, v in r["agreement"].items()]
    _print_rows(rows, ["field", "accuracy", "majority", "micro_f1"], f"student vs teacher on {r['held_out']} held-out labels")
    console.print(f"{r['comments_labelled']} comments labelled at {r['student_comments_per_minute']}/min → {out / 'comment_labels.parquet'}")


@lcu_app.command("train")
@clean_errors
def lcu_train_cmd(
    data: Path = DATA_OPT, out: Path = OUT_OPT, source: str = SOURCE_OPT,
    text: bool = typer.Option(True, "--text/--no-text", help="MiniLM embeddings of the post and comments"),
    labels: bool = typer.Option(True, "--labels/--no-labels", help="LLM (student) comment labels"),
    aux_user: float = typer.Option(0.001, "--aux-user", help="λ1, user-specific comment ranking (0 = off)"),
    aux_popular: float = typer.Option(0.1, "--aux-popular", help="λ2, user-agnostic ranking by upvotes (0 = off)"),
    aux_user_loss: str = typer.Option("bce", "--aux-user-loss", help="aux 1's loss: bce (LCU's, per comment) or softmax (per list)"),
    epochs: int = typer.Option(4, "--epochs", min=1), seed: int = typer.Option(0, "--seed"),
    budget: Optional[float] = typer.Option(None, "--time-budget", help="seconds of training at most"),
) -> None:
    """Engagement model (DCN + field attention, WLR + correction) with the two auxiliary ranking heads."""
    from recsage.pipelines.lcu import lcu_train
    from recsage.recmodels.engagement import EngagementConfig

    cfg = EngagementConfig(use_text=text, use_labels=labels, lambda_user=aux_user, lambda_popular=aux_popular, user_loss=aux_user_loss, epochs=epochs, seed=seed,
                           time_budget_seconds=budget)
    m = lcu_train(data, out, cfg, source=source)
    _print_metrics(m["test"], f"test ({m['epochs']} epochs, {m['train_seconds']} s)")


@lcu_app.command("popularity")
@clean_errors
def lcu_popularity_cmd(
    data: Path = typer.Option(..., "--data", help="YouTube comment-likes folder (videos-stats.csv + comments.csv)"),
    student: Optional[Path] = typer.Option(None, "--student", help="a saved student (a work folder's student/) to add its labels as features"),
    seeds: str = typer.Option("0,1,2", "--seeds", help="each seed is its own video split"),
) -> None:
    """User-agnostic comment ranking alone: which comments under a video get the most likes (LambdaRank per feature group)."""
    from recsage.pipelines.lcu_popularity import lcu_popularity, popularity_summary

    rows = lcu_popularity(data, student=student, seeds=tuple(int(s) for s in seeds.split(",")))
    cols = ["ndcg@1", "ndcg@3", "ndcg@5", "mrr"]
    table = [{"method": r["method"], **{k: f"{r[k]:.4f} ±{r[k + '_std']:.4f}" for k in cols}} for r in popularity_summary(rows)]
    _print_rows(table, ["method", *cols], f"test videos, mean ± std over seeds {seeds}")


@lcu_app.command("evaluate")
@clean_errors
def lcu_evaluate_cmd(data: Path = DATA_OPT, out: Path = OUT_OPT, source: str = SOURCE_OPT, split: str = typer.Option("test", "--split")) -> None:
    """Scores the saved model of the work folder on one split."""
    from recsage.pipelines.lcu import lcu_evaluate

    _print_metrics(lcu_evaluate(data, out, split=split, source=source), split)


def _print_metrics(m: dict, title: str) -> None:
    cols = [c for c in ("rmse", "mae", "xauc", "auc", "user_ndcg@1", "user_ndcg@3", "user_mrr", "popular_ndcg@1", "popular_ndcg@3", "popular_mrr") if c in m]
    _print_rows([m], cols, title)
