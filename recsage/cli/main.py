"""`recsage` command line: thin wrappers over `recsage.pipelines`."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import typer
from rich.console import Console
from rich.table import Table

from recsage.core.errors import InvalidInputError, RecsageError

app = typer.Typer(help="recsage: LLM signals, Semantic IDs and compact recommenders.", no_args_is_help=True)
data_app = typer.Typer(help="Prepare and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
sid_app = typer.Typer(help="Semantic-ID codebooks.", no_args_is_help=True)
app.add_typer(sid_app, name="sid")
llm_app = typer.Typer(help="Run and inspect the LLM runtime.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")
tagcf_app = typer.Typer(help="TagCF: LLM item tags and user roles, the role graph, features, role identification.", no_args_is_help=True)
app.add_typer(tagcf_app, name="tagcf")
push_app = typer.Typer(help="PushGen: push-copy generation, reward model, scoring.", no_args_is_help=True)
app.add_typer(push_app, name="push")
console = Console(width=None if os.isatty(1) else 140)


BACKEND_OPT = typer.Option(None, "--backend", help="embedded (default) | llamacpp | openai | transformers | vllm")
MODEL_OPT = typer.Option(None, "--model", help="embedded: default|small; openai/vllm: model name; llamacpp: GGUF path")
URL_OPT = typer.Option(None, "--base-url", help="openai: server URL, e.g. http://127.0.0.1:8000/v1")
JSON_MODE_OPT = typer.Option(None, "--json-mode", help="openai: json_schema | json_object_schema (llama.cpp server) | none")


ENGINE_OPT = typer.Option("local", "--engine", help="local (this process) | ray (Ray Data actor pool; one LLM per actor)")
RAY_ADDRESS_OPT = typer.Option(None, "--ray-address", help="ray: a running cluster (host:port, ray://host:port or auto); default: a local Ray")
ACTORS_OPT = typer.Option(1, "--actors", min=1, help="ray: actors (model copies) in the pool")
CPUS_OPT = typer.Option(1.0, "--cpus-per-actor", help="ray: CPUs each actor reserves (= its llama.cpp threads)")
GPUS_OPT = typer.Option(0.0, "--gpus-per-actor", help="ray: GPUs each actor reserves (vLLM on a GPU cluster)")


def _engine_config(engine: str, address: Optional[str], actors: int, cpus: float, gpus: float):
    from recsage.llm.batch import EngineConfig

    return EngineConfig(engine=engine, address=address, actors=actors, cpus_per_actor=cpus, gpus_per_actor=gpus)


def _llm_config(backend: Optional[str], model: Optional[str], base_url: Optional[str], json_mode: Optional[str], no_cache: bool):
    from recsage.llm.registry import LLMConfig

    return LLMConfig.from_env(backend=backend, model=model, base_url=base_url, json_mode=json_mode, cache=False if no_cache else None)


def clean_errors(fn):
    """Known errors become one readable line and exit code 2, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RecsageError as e:
            console.print(f"[bold red]error:[/] {e}")
            raise typer.Exit(2) from None

    return wrapper


def _print_rows(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*[f"{r[c]:.4f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in columns])
    console.print(table)


@data_app.command("prepare")
@clean_errors
def data_prepare(
    kind: str = typer.Argument(..., help="beauty | scientific | amazon | amazon-reviews | movielens | movielens-1m | upworthy | reddit | youtube | generic"),
    src: Path = typer.Option(..., "--src", help="source folder or file"),
    out: Path = typer.Option(..., "--out", help="output folder (Parquet + summary.json)"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="skip bad rows and count them in validation_report.json"),
    items: Optional[Path] = typer.Option(None, "--items", help="generic: item table (CSV/JSONL/Parquet)"),
    mapping: Optional[str] = typer.Option(None, "--mapping", help="generic: FIELD=COLUMN pairs, e.g. user=uid,item=sku,timestamp=ts,title=name. "
                                          "Fields: user, item, timestamp, rating (interactions); title, description, brand, categories, "
                                          "categories_sep (--items table); split (a train/valid/test column: your own split, kept as "
                                          "protocol 'given'). Defaults: user=user_id, item=item_id, timestamp=timestamp, title=title"),
    order: str = typer.Option("timestamp", "--order", help="generic: 'timestamp' (sort) or 'file' (rows already in order)"),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="the source's text encoding, e.g. latin-1 or cp1252 (default: the format's own; UTF-8, and Latin-1 for MovieLens titles)"),
) -> None:
    """Load, validate and write a dataset as Parquet, with its splits and a JSON summary."""
    from recsage.pipelines import prepare_dataset

    with console.status(f"preparing {kind} from {src}"):
        summary = prepare_dataset(kind, src, out, skip_bad=skip_bad, items=items, mapping=mapping, order=order, encoding=encoding)
    console.print_json(json.dumps(summary, default=str))
    console.print(f"[green]wrote[/] {out}")


@data_app.command("info")
@clean_errors
def data_info(path: Path = typer.Argument(..., help="prepared dataset folder or a table file")) -> None:
    """Counts, columns and validation report of a dataset."""
    from recsage.pipelines import data_info as info

    console.print_json(json.dumps(info(path), default=str))


@app.command("eval")
@clean_errors
def eval_cmd(
    data: Path = typer.Option(..., "--data", help="prepared dataset folder"),
    method: str = typer.Option("itemknn", "--method", help="popularity | itemknn"),
    protocol: str = typer.Option("loo", "--protocol", help="loo | chrono811"),
    ks: str = typer.Option("5,10,20,50", "--ks"),
    out: Optional[Path] = typer.Option(None, "--out", help="append the result row to this JSON file"),
) -> None:
    """Fit a baseline on the split's training part and score the test part (full ranking)."""
    from recsage.pipelines import evaluate_recommender
    from recsage.pipelines.data import load_split

    _, split = load_split(data, protocol)
    row = evaluate_recommender(method, split, tuple(int(k) for k in ks.split(",")))
    row["dataset"] = str(data)
    cols = ["method", "protocol"] + [c for c in row if c.startswith(("recall@", "ndcg@"))] + ["n_users", "seconds"]
    _print_rows([row], cols, f"{method} on {data} ({protocol})")
    if out:
        rows = json.loads(out.read_text()) if out.exists() else []
        out.write_text(json.dumps(rows + [row], indent=2))


@app.command("demo")
@clean_errors
def demo(
    data: Optional[Path] = typer.Option(None, "--data", help="folder with the bundled samples (default: the checkout's data/)"),
    out: Path = typer.Option(Path(".recsage/demo"), "--out"),
    llm_items: int = typer.Option(6, "--llm-items", help="items to tag with the LLM (0 skips the LLM steps)"),
    train_seconds: float = typer.Option(30.0, "--train-seconds", min=1.0, help="training cap of each demo model (SASRec, lazy, DiffGRM)"),
    backend: Optional[str] = BACKEND_OPT,
    model: Optional[str] = MODEL_OPT,
) -> None:
    """Run everything recsage can do on the bundled real sample and print a report."""
    from recsage.pipelines import run_demo

    console.rule("[bold]recsage demo")
    with console.status("running the demo pipeline (first run assembles the model and embeds items)"):
        report = run_demo(data, out, llm=_llm_config(backend, model, None, None, False), n_llm_items=llm_items, train_seconds=train_seconds)
    sci = report["datasets"]["scientific-sample"]
    up = report["datasets"]["upworthy-sample"]
    console.print(
        f"Amazon Scientific sample: {sci['n_users']} users, {sci['n_items']} items, {sci['n_interactions']} interactions "
        f"(rows skipped: {sci['validation'].get('n_skipped', 0)})"
    )
    console.print(f"Upworthy sample: {up['n_tests']} headline A/B tests, {up['n_experiments']} variants")
    _print_rows(
        report["baselines"],
        ["method", "protocol", "recall@5", "ndcg@5", "recall@10", "ndcg@10", "coverage@10", "n_users", "seconds"],
        "Leave-one-out, full ranking, Scientific sample (test users)",
    )
    if "tagcf" in report:
        tc = report["tagcf"]
        console.print(f"\n[bold]TagCF[/] ({tc['model']}): vocabularies {tc['vocabulary']}, {tc['tagged']} items tagged, {tc['failed']} failed; graph {tc['graph']}")
        for ex in tc["examples"]:
            console.print(f"  {ex['title']}\n    topics {ex['topics']}  roles {ex['roles']}")
        if tc["edges"]:
            _print_rows(tc["edges"], ["source", "target", "evidence", "strength", "lift", "support_users", "llm_count"],
                        "strongest role → topic edges above the support floor (strength = lower bound of the lift)")
        elif "role_topic_edges" in tc.get("graph", {}):
            console.print(f"  no role → topic edge is above the support floor yet ({tc['graph']['role_topic_edges']} kept below it, "
                          "hidden): an edge needs ≥5 users or ≥3 LLM-tagged items — tag more items (--llm-items)")
    if "scale" in report:
        sc = report["scale"]
        line = sc.get("skipped") or (f"tagging on {sc['engine']}: {sc['ok']}/{sc['items']} items, same tags as the local engine "
                                     f"for {sc['same_as_local']} ({sc['seconds']} s)")
        console.print(f"\n[bold]Scale-out[/]: {line}")
    if "push" in report:
        pu = report["push"]
        ho = pu["held_out"]
        console.print(f"\n[bold]PushGen[/] reward model on {pu['pairs']['pairs']} Upworthy-sample pairs: held-out accuracy {ho['acc_all']:.3f} "
                      f"(AUC {ho['auc_all']:.3f}, {ho['pairs_all']} pairs; chance 0.5)")
        console.print(f"  item: {pu['item']}")
        for c in pu["copies"]:
            console.print(f"  {c['style']}: {c['chosen']!r}  ({c['passed']}/{c['candidates']} candidates passed the filters)")
    if "lcu" in report:
        lc = report["lcu"]
        if "skipped" in lc:
            console.print(f"\n[bold]LCU[/] skipped: {lc['skipped']}")
        else:
            console.print(f"\n[bold]LCU[/] on {lc['sections']['examples']} Reddit (user, thread) examples {lc['sections']['per_split']}: "
                          f"{lc['model']} labelled {len(lc['live_labels'])} comments live; the student learned from {lc['student']['teacher_labels']} committed teacher labels")
            for r in lc["live_labels"]:
                console.print(f"  {r['comment']!r}: {r['kind']}, {r['sentiment']}, informative {r['informative']}, relevance {r['relevance']}, topics {r['topics']}"
                              if r["status"] == "ok" else f"  {r['comment']!r}: failed")
            te = lc["test"]
            console.print(f"  engagement model (test): AUC {te['auc']:.3f}, XAUC {te['xauc']:.3f}, RMSE {te['rmse']:.1f} min; "
                          f"reply ranking nDCG@1 {te['user_ndcg@1']:.3f}, upvote ranking nDCG@1 {te['popular_ndcg@1']:.3f}")
            if lc["explained"]:
                ex = lc["explained"]
                console.print(f"  user {ex['user']}: predicted {ex['predicted_minutes']:.1f} min (actual {ex['actual_minutes']:.1f}); {ex['reasons']}")
    sid = report["sid"]
    console.print(
        f"\n[bold]Semantic IDs[/] (RQ-KMeans 3x64 on MiniLM text embeddings): collision rate before dedup {sid['collision_rate']:.2%}, "
        f"utilisation per level {[round(lv['utilisation'], 2) for lv in sid['levels']]}, fit {sid['fit_seconds']}s"
    )
    for title, text in report["sid_examples"]:
        console.print(f"  {text}  {title}")
    if "models" in report:
        mo = report["models"]
        _print_rows(mo["metrics"], ["model", "recall@10", "ndcg@10", "epochs"], "Trained on the sample (leave-one-out test users)")
        console.print(f"User {mo['user']['user_id']}: last items {mo['user']['history']}; held-out next item: {mo['user']['held_out']!r}")
        for name, titles in mo["recommendations"].items():
            console.print(f"  {name} top-5: " + " | ".join(titles))
    if "onereason" in report:
        orr = report["onereason"]
        console.print(f"\n[bold]OneReason[/]: {orr['chains']} chains derived from training sequences (rejected: {orr['rejected'] or 'none'}); "
                      f"user {orr['chain_user']}'s chain worded by {orr['model']} in {orr['llm_seconds']}s — verifier: {orr['status']}")
        console.print(orr["facts"], markup=False, highlight=False)
        for part, text in (orr["text"] or {}).items():
            console.print(f"  {part}: {text}", markup=False, highlight=False)
        for p in orr["problems"]:
            console.print(f"  dropped ({p['reason']}): {p['sentence']}", markup=False, highlight=False)
        console.print(f"  SFT export: {orr['sft']['records']} records {orr['sft']['by_task']}; thinking model N@10 by decoding mode {orr['ndcg@10']}")
        ex = orr["explained"]
        console.print(f"  user {ex['user']}: the model deduced '{ex['deduction']}' → " + " | ".join(ex["recommendations"]), markup=False, highlight=False)
    if "ranking" in report:
        rk = report["ranking"]
        console.print(f"\n[bold]Feature tables[/] {rk['rows']}: groups {rk['groups']}; absent {sorted(rk['absent'])}")
        base = next((b for b in report["baselines"] if b["method"] == "itemknn"), {})
        console.print(f"[bold]Ranking stage[/] over {' + '.join(rk['retrievers'])} candidates: N@10 {rk['metrics']['ndcg@10']:.4f} "
                      f"(item-kNN {base.get('ndcg@10', float('nan')):.4f}), R@10 {rk['metrics']['recall@10']:.4f}, "
                      f"candidate recall@50 {rk['metrics']['candidate_recall@50']:.3f}; gain by group "
                      + ", ".join(f"{g} {v:.0%}" for g, v in rk["group_importance"].items()))
        console.print(f"User {rk['user']}, ranked and explained:")
        for r in rk["explained"]:
            console.print(f"  {r['title']}: {r['why']}")
    console.print()
    for step, secs in report["steps"]:
        console.print(f"  {step}: {secs:.1f}s")
    console.print(f"[green]outputs in[/] {report['out_dir']}")


@sid_app.command("fit")
@clean_errors
def sid_fit(
    items: Path = typer.Option(..., "--items", help="prepared dataset folder (recsage data prepare)"),
    method: str = typer.Option("rqkmeans", "--method", help="rqkmeans | balanced | rqvae | parallel (DiffGRM's decoupled digits)"),
    source: str = typer.Option("text", "--source", help="text (sentence embeddings) | cf (co-occurrence SVD) | fused (text pulled toward co-consumed items)"),
    levels: int = typer.Option(3, "--levels", min=1, help="digits per semantic ID"),
    codes: Optional[int] = typer.Option(None, "--codes", min=2, help="codes per digit (default: from the catalogue size, 8-256; 256 from ~16k items)"),
    collision: str = typer.Option("suffix", "--collision", help="suffix (extra level) | reassign (nearest free leaf) | none"),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="rqvae only"),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out"),
) -> None:
    """Fit a Semantic-ID codebook for a dataset's items and save it with a metrics report."""
    from recsage.datasets import Dataset
    from recsage.pipelines.sid import build_semantic_ids

    ds = Dataset.load(items)
    with console.status(f"fitting {method} ({levels} digits) on {ds.n_items} items"):
        _, rep = build_semantic_ids(ds, method=method, source=source, levels=levels, codes=codes, collision=collision, out=out, seed=seed, epochs=epochs)
    _print_sid_report(rep)
    console.print(f"[green]wrote[/] {out}")


def _print_sid_report(rep: dict) -> None:
    _print_rows(rep["levels"], ["level", "used_codes", "utilisation", "entropy_norm", "max_bucket"], f"{rep.get('method', '')} codebook: {rep['n_items']} items")
    extra = {k: rep.get(k) for k in ("codes", "collision_rate", "distinct_sids", "reconstruction_error", "semantic_consistency", "fit_seconds")}
    console.print(json.dumps(extra | {"collision": rep.get("collision")}, default=str))


@sid_app.command("stats")
@clean_errors
def sid_stats(path: Path = typer.Argument(..., help="folder written by `recsage sid fit`")) -> None:
    """Utilisation, entropy, collisions and reconstruction error of a saved codebook."""
    from recsage.pipelines.sid import sid_stats as stats

    rep = stats(path)
    _print_sid_report(rep)
    console.print(json.dumps(rep["final"]))


@llm_app.command("generate")
@clean_errors
def llm_generate(
    prompt: str = typer.Option(..., "--prompt"),
    schema: Optional[Path] = typer.Option(None, "--schema", help="JSON schema file: output is constrained and validated"),
    backend: Optional[str] = BACKEND_OPT,
    model: Optional[str] = MODEL_OPT,
    base_url: Optional[str] = URL_OPT,
    json_mode: Optional[str] = JSON_MODE_OPT,
    max_tokens: int = typer.Option(256, "--max-tokens"),
    no_cache: bool = typer.Option(False, "--no-cache"),
) -> None:
    """Generate text (or schema-valid JSON) with the configured backend."""
    from recsage.pipelines.llm import llm_generate as gen

    res = gen(prompt, schema_path=schema, config=_llm_config(backend, model, base_url, json_mode, no_cache), max_tokens=max_tokens)
    if schema is None:
        console.print(res["text"])
    else:
        console.print_json(json.dumps(res["value"]) if res["ok"] else json.dumps({"error": res["error"], "raw": res["raw"]}))
    res.pop("text", None)
    console.print(f"[dim]{json.dumps({k: v for k, v in res.items() if k not in ('value', 'raw')}, default=str)}[/]")
    if not res["ok"]:
        raise typer.Exit(1)


@llm_app.command("info")
@clean_errors
def llm_info(
    backend: Optional[str] = BACKEND_OPT,
    model: Optional[str] = MODEL_OPT,
    base_url: Optional[str] = URL_OPT,
) -> None:
    """Backend, model, licence, threads and cache location."""
    from recsage.pipelines.llm import llm_info as info

    console.print_json(json.dumps(info(_llm_config(backend, model, base_url, None, False)), default=str))


@llm_app.command("cache")
@clean_errors
def llm_cache(action: str = typer.Argument(..., help="stats | clear"), path: Optional[str] = typer.Option(None, "--path")) -> None:
    """Inspect or empty the LLM response cache."""
    from recsage.pipelines.llm import llm_cache as cache

    console.print_json(json.dumps(cache(action, path)))


def _parse_params(items: list[str]) -> dict:
    out = {}
    for it in items:
        if "=" not in it:
            raise typer.BadParameter(f"--set expects key=value, got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


@app.command("train")
@clean_errors
def train_cmd(
    method: str = typer.Argument(..., help="sasrec | tagcf | tiger | lazy | diffgrm | itemknn | popularity"),
    data: Path = typer.Option(..., "--data", help="prepared dataset folder"),
    out: Path = typer.Option(..., "--out"),
    sid: Optional[str] = typer.Option(None, "--sid", help="tiger/lazy: SID folder from `recsage sid fit`, or published:<index>"),
    protocol: str = typer.Option("loo", "--protocol"),
    seed: int = typer.Option(0, "--seed"),
    tags: Optional[Path] = typer.Option(None, "--tags", help="tagcf, or sasrec with --tag-features: folder from `recsage tagcf extract`"),
    tag_features: bool = typer.Option(False, "--tag-features", help="feed TagCF graph item features through the side-info hook"),
    cf_features: bool = typer.Option(False, "--cf-features", help="feed collaborative item vectors (co-occurrence SVD of the training sequences) through the side-info hook"),
    set_: list[str] = typer.Option([], "--set", help="config override, e.g. --set epochs=20 --set dim=64; `recsage settings METHOD` lists the keys"),
    fixed_defaults: bool = typer.Option(False, "--fixed-defaults", help="use the config classes' fixed defaults instead of values chosen from the data"),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", min=0.01, help="wall-clock cap on training; a run it stops says so (stopped_by_time)"),
) -> None:
    """Train with early stopping on validation NDCG@10 (resumes from OUT/checkpoints), then score the test split.
    Under `torchrun` the ranks train data-parallel (gloo on CPU, nccl on GPU); rank 0 evaluates and saves."""
    from recsage.pipelines.data import load_split
    from recsage.pipelines.train import train_recommender
    from recsage.recmodels.trainer import dist_info, init_distributed_from_env

    init_distributed_from_env()

    extra: dict[str, Any] = {}
    if tags is not None:
        from recsage.pipelines.tagcf import tagcf_model_inputs

        ds, split = load_split(data, protocol)
        inputs = tagcf_model_inputs(ds, split, tags)
        extra = {"dataset": ds, "split": split}
        if method == "tagcf":
            extra |= {"item_tags": inputs["item_tags"], "logic": inputs["logic"]}
        if tag_features:
            extra["side_features"] = inputs["side_features"]
    if cf_features:
        from recsage.tokenizers.item_vectors import collaborative_vectors

        if tag_features:
            raise InvalidInputError("choose one of --tag-features and --cf-features", field="cf_features")
        if "split" not in extra:
            ds, split = load_split(data, protocol)
            extra = {"dataset": ds, "split": split}
        extra["side_features"] = collaborative_vectors(extra["split"].train.sequences, extra["split"].n_items, dim=64)
    params = _parse_params(set_)
    if max_minutes is not None and method not in ("itemknn", "popularity"):
        params["max_train_seconds"] = max_minutes * 60
    _, row = train_recommender(method, data, protocol=protocol, sid=sid, out=out, seed=seed, adapt_defaults=not fixed_defaults, **extra, **params)
    if dist_info()[0] != 0:
        return
    if row.get("resumed_from_epoch") is not None:
        console.print(f"resumed from the checkpoint after epoch {row['resumed_from_epoch']} in {out / 'checkpoints'}; "
                      f"train_seconds ({row['train_seconds']}) counts the interrupted attempts too")
    if row.get("defaults"):
        chosen = [{"setting": k, "value": v["value"], "why": v["reason"]} for k, v in row["defaults"]["chosen"].items()]
        _print_rows(chosen, ["setting", "value", "why"], "settings chosen from the data (override with --set KEY=VALUE)")
    cols = ["method", "protocol", "recall@5", "ndcg@5", "recall@10", "ndcg@10", "train_seconds", "ms_per_user"]
    _print_rows([row], cols, f"{method} on {data}")
    console.print(f"[green]saved[/] {out}")


@app.command("settings")
@clean_errors
def settings_cmd(method: str = typer.Argument(..., help="sasrec | tagcf | tiger | lazy | diffgrm | thinking")) -> None:
    """The `--set KEY=VALUE` keys of `recsage train METHOD`: type, fixed default and meaning.
    (Without --fixed-defaults, train chooses several of them from the data and says which and why.)"""
    from recsage.pipelines.train import method_settings

    rows = method_settings(method)
    if not rows:
        console.print(f"{method} has no settings")
        return
    _print_rows(rows, ["key", "type", "default", "meaning"], f"recsage train {method} --set KEY=VALUE")


@app.command("evaluate")
@clean_errors
def evaluate_cmd(
    model: Path = typer.Option(..., "--model", help="folder OUT/model written by `recsage train` or `recsage rank train`"),
    data: Path = typer.Option(..., "--data"),
    protocol: str = typer.Option("loo", "--protocol"),
    ks: str = typer.Option("5,10,20", "--ks"),
    queries: Optional[Path] = typer.Option(None, "--queries", help="JSONL {\"history\": [raw item ids], \"target\": raw item id} rows: your own protocol"),
    include_seen: bool = typer.Option(False, "--include-seen", help="with --queries: items in the history may be recommended"),
) -> None:
    """Score a saved model on a prepared dataset's test split (full ranking), or on your own queries."""
    from recsage.datasets import Dataset
    from recsage.evaluation import evaluate
    from recsage.pipelines.data import load_split
    from recsage.pipelines.inference import queries_from_file
    from recsage.pipelines.train import load_model

    try:
        cutoffs = tuple(int(k) for k in ks.split(","))
    except ValueError:
        raise InvalidInputError(f"--ks takes comma-separated integers, got {ks!r}", field="ks") from None
    if queries is not None:
        ds = Dataset.load(data)
        qs, n_items, exclude = queries_from_file(queries, ds), ds.n_items, not include_seen
    else:
        _, split = load_split(data, protocol)
        qs, n_items, exclude = split.test, split.n_items, split.exclude_seen
    m = load_model(model)
    res = evaluate(m, qs, cutoffs, n_items=n_items, exclude_seen=exclude)
    console.print_json(json.dumps(res))


@app.command("recommend")
@clean_errors
def recommend_cmd(
    model: Path = typer.Option(..., "--model"),
    data: Path = typer.Option(..., "--data"),
    user: Optional[int] = typer.Option(None, "--user", help="one user (internal id): top-K with titles on screen"),
    users: Optional[str] = typer.Option(None, "--users", help="'all' or a file with a 'user' column of raw user ids (needs --out)"),
    histories: Optional[Path] = typer.Option(None, "--histories", help="JSONL rows {\"id\": …, \"history\": [raw item ids]} (needs --out)"),
    k: int = typer.Option(10, "--k", min=1),
    include_seen: bool = typer.Option(False, "--include-seen", help="batch: allow items already in the history"),
    out: Optional[Path] = typer.Option(None, "--out", help="batch output: .parquet, .csv or .jsonl"),
) -> None:
    """Top-K items for one user (--user), or for many (--users all|FILE, or --histories FILE) into --out."""
    from recsage.pipelines.inference import recommend_batch, recommend_for_user

    if sum(x is not None for x in (user, users, histories)) != 1:
        raise InvalidInputError("give exactly one of --user, --users and --histories", field="user")
    if user is None:
        if out is None:
            raise InvalidInputError("--users/--histories write their rows to --out (.parquet, .csv or .jsonl)", field="out")
        console.print_json(json.dumps(recommend_batch(model, data, users=users, histories=histories, k=k, include_seen=include_seen, out=out)))
        return
    res = recommend_for_user(model, data, user, k)
    console.print(f"[bold]user {user}[/] recent history: {res['history']}")
    if res["cold_start_fallback"]:
        console.print("[yellow]no history: popularity fallback[/]")
    _print_rows(res["recommendations"], ["rank", "item_id", "title", "score"], "recommendations")


# ---------------- TagCF ----------------
@tagcf_app.command("extract")
@clean_errors
def tagcf_extract(
    data: Path = typer.Option(..., "--data", help="prepared dataset folder"),
    out: Path = typer.Option(..., "--out", help="tags folder (vocabularies, LLM parts, item_tags.parquet)"),
    limit: Optional[int] = typer.Option(None, "--limit", help="tag only the N most popular items (others keep data-derived topics)"),
    shortlist: int = typer.Option(12, "--shortlist", min=0, help="vocabularies over 2N topics: show each item its N nearest topics (and 8 roles), shuffled per item; 0 = always the whole vocabulary"),
    extend: bool = typer.Option(True, "--extend/--no-extend", help="let the LLM propose new tags before tagging"),
    roles: Optional[Path] = typer.Option(None, "--roles", help="YAML role list (group: [roles]); default for data without user profiles: the shipped starter roles"),
    retry_failed: bool = typer.Option(False, "--retry-failed"),
    backend: Optional[str] = BACKEND_OPT, model: Optional[str] = MODEL_OPT, base_url: Optional[str] = URL_OPT,
    json_mode: Optional[str] = JSON_MODE_OPT,
    engine: str = ENGINE_OPT, ray_address: Optional[str] = RAY_ADDRESS_OPT, actors: int = ACTORS_OPT,
    cpus_per_actor: float = CPUS_OPT, gpus_per_actor: float = GPUS_OPT,
) -> None:
    """Seed + extend + consolidate the vocabularies (once), then tag items (resumable; on Ray with --engine ray)."""
    from recsage.datasets import Dataset
    from recsage.pipelines.tagcf import build_vocabularies, tag_items

    eng = _engine_config(engine, ray_address, actors, cpus_per_actor, gpus_per_actor)
    ds = Dataset.load(data)
    cfg = _llm_config(backend, model, base_url, json_mode, False)
    if not (out / "topics.json").exists():
        console.print_json(json.dumps(build_vocabularies(ds, out, llm=cfg, extend=extend, roles_file=roles)))
    console.print_json(json.dumps(tag_items(ds, out, out, llm=cfg, limit=limit, retry_failed=retry_failed, engine=eng, shortlist=shortlist), default=str))


@tagcf_app.command("graph")
@clean_errors
def tagcf_graph(
    data: Path = typer.Option(..., "--data"),
    tags: Path = typer.Option(..., "--tags"),
    out: Path = typer.Option(..., "--out", help="graph folder (JSON, GraphML, matrices)"),
    llm_weight: float = typer.Option(0.5, "--llm-weight", help="share of LLM evidence in edge weights (rest: behaviour)"),
    features: Optional[Path] = typer.Option(None, "--features", help="also export item/user feature Parquet files here"),
) -> None:
    """Build the role↔topic graph; print its statistics and strongest edges."""
    from recsage.datasets import Dataset
    from recsage.pipelines.tagcf import build_role_graph, export_features

    ds = Dataset.load(data)
    g = build_role_graph(ds, tags, out, llm_weight=llm_weight)
    stats = g.stats()
    console.print_json(json.dumps({k: v for k, v in stats.items() if k != "rejections"}))
    _print_rows(g.top_edges(n=15).to_dict("records"), ["source", "target", "evidence", "strength", "lift", "lift_low", "lift_high", "support_users", "support_items", "llm_count"],
                f"strongest role → topic edges ({stats['role_topic_edges_above_floor']} of {stats['role_topic_edges']} above the support floor: "
                f"≥{stats['support_floor']['users']} users or ≥{stats['support_floor']['llm_items']} LLM-tagged items; strength = lower 95% bound of the lift)")
    if features is not None:
        console.print_json(json.dumps(export_features(ds, tags, out, features)))


@tagcf_app.command("roles")
@clean_errors
def tagcf_roles(
    data: Path = typer.Option(..., "--data"),
    tags: Path = typer.Option(..., "--tags"),
    seeds: str = typer.Option("0", "--seeds", help="user splits to average over, e.g. 0,1,2"),
    folds: int = typer.Option(0, "--folds", min=0, help="≥ 2: every user held out once, in this many user-level folds per seed (0: one 20% split per seed)"),
    llm_answers: Optional[Path] = typer.Option(None, "--llm-answers", help="folder from `recsage tagcf read-roles` (adds the LLM route)"),
    out: Optional[Path] = typer.Option(None, "--out", help="also write every row as JSON here"),
    text: bool = typer.Option(True, "--text/--no-text", help="include the MiniLM text of the history (embeds every item once)"),
) -> None:
    """Identify held-out users' roles from their history: majority, topic-frequency and graph
    baselines against the supervised classifier (needs user profiles to score against)."""
    from recsage.datasets import Dataset
    from recsage.pipelines.roles import identify_roles_supervised, summarise_roles

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(f"--seeds must be integers separated by commas, got {seeds!r}") from None
    if folds == 1:
        raise typer.BadParameter("--folds must be 0 (one 20% split per seed) or at least 2")
    rows = identify_roles_supervised(Dataset.load(data), tags, seeds=seed_list, folds=folds, llm_answers=llm_answers, text=text)
    summary = summarise_roles(rows)
    _print_rows(summary, ["group", "method", "classes", "seeds", "top1_acc", "top3_acc", "macro_f1", "log_loss", "ece"],
                "role identification (held-out users, mean over seeds)")
    if out is not None:
        out.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2, default=str))


@tagcf_app.command("preview")
@clean_errors
def tagcf_preview(
    data: Path = typer.Option(..., "--data", help="prepared dataset folder"),
    tags: Path = typer.Option(..., "--tags", help="tags folder with topics.json and roles.json"),
    items: str = typer.Option(..., "--items", help="item ids (internal), comma separated"),
    out: Path = typer.Option(..., "--out", help="Parquet: one row per item with the validated JSON, or the error and raw output"),
    backend: Optional[str] = BACKEND_OPT, model: Optional[str] = MODEL_OPT, base_url: Optional[str] = URL_OPT,
    json_mode: Optional[str] = JSON_MODE_OPT,
) -> None:
    """Tag a few chosen items for review (the workbench's background tagging job); resumes after a kill."""
    from recsage.datasets import Dataset
    from recsage.pipelines.tagcf import write_tag_preview

    try:
        ids = [int(i) for i in items.split(",") if i.strip()]
    except ValueError:
        raise typer.BadParameter(f"--items must be item ids separated by commas, got {items!r}") from None
    if not ids:
        raise typer.BadParameter("--items names no item")
    frame = write_tag_preview(Dataset.load(data), tags, ids, out, llm=_llm_config(backend, model, base_url, json_mode, False),
                              echo=lambda line: console.print(line))
    console.print(f"{int((frame['status'] == 'ok').sum())} of {len(frame)} items tagged → {out}")


@tagcf_app.command("read-roles")
@clean_errors
def tagcf_read_roles(
    data: Path = typer.Option(..., "--data"),
    out: Path = typer.Option(..., "--out", help="folder: user_roles_llm.parquet + the resumable job"),
    users: Optional[Path] = typer.Option(None, "--users", help="file with one user id (internal) per line; default: every profiled user"),
    max_items: int = typer.Option(25, "--max-items", min=1, help="most recent history items shown to the LLM"),
    retry_failed: bool = typer.Option(False, "--retry-failed"),
    backend: Optional[str] = BACKEND_OPT, model: Optional[str] = MODEL_OPT, base_url: Optional[str] = URL_OPT,
    json_mode: Optional[str] = JSON_MODE_OPT,
    engine: str = ENGINE_OPT, ray_address: Optional[str] = RAY_ADDRESS_OPT, actors: int = ACTORS_OPT,
    cpus_per_actor: float = CPUS_OPT, gpus_per_actor: float = GPUS_OPT,
) -> None:
    """The LLM route: the model reads each user's history and names one role per group (resumable)."""
    from recsage.datasets import Dataset
    from recsage.pipelines.roles import read_user_roles

    ids = None
    if users is not None:
        ids = []
        try:
            lines = users.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInputError(f"cannot read the user list as UTF-8 text ({e})", file=str(users)) from None
        for n, line in enumerate(lines, 1):
            if line.strip():
                try:
                    ids.append(int(line.strip()))
                except ValueError:
                    raise InvalidInputError(f"not a user id: {line.strip()[:40]!r}", file=str(users), record=f"line {n}", field="user_id") from None
    meta = read_user_roles(Dataset.load(data), out, user_ids=ids, llm=_llm_config(backend, model, base_url, json_mode, False), max_items=max_items,
                           retry_failed=retry_failed, engine=_engine_config(engine, ray_address, actors, cpus_per_actor, gpus_per_actor))
    console.print_json(json.dumps(meta, default=str))


@tagcf_app.command("train")
@clean_errors
def tagcf_train(
    data: Path = typer.Option(..., "--data"),
    tags: Path = typer.Option(..., "--tags"),
    out: Path = typer.Option(..., "--out"),
    protocol: str = typer.Option("loo", "--protocol"),
    seed: int = typer.Option(0, "--seed"),
    set_: list[str] = typer.Option([], "--set", help="config override, e.g. --set tag_loss_weight=0.5"),
) -> None:
    """Train the TagCF recommender (same as `recsage train tagcf --tags …`)."""
    train_cmd("tagcf", data, out, None, protocol, seed, tags, False, set_)


# ---------------- PushGen ----------------
@push_app.command("train-reward")
@clean_errors
def push_train_reward(
    upworthy: Path = typer.Option(..., "--upworthy", help="Upworthy archive folder or file"),
    out: Path = typer.Option(..., "--out"),
    model: str = typer.Option("embedding-bt", "--model", help="embedding-bt | finetuned-minilm"),
    set_: list[str] = typer.Option([], "--set", help="config override, e.g. --set epochs=20"),
) -> None:
    """Train a reward model on Upworthy A/B pairs (split by test id) and report held-out accuracy."""
    from recsage.pipelines.push import train_reward_model

    row = train_reward_model(upworthy, out, model=model, **_parse_params(set_))
    _print_rows([row], ["method", "acc_all", "auc_all", "acc_significant", "auc_significant", "pairs_all", "train_seconds"], "held-out pairs")


@push_app.command("score")
@clean_errors
def push_score(
    model: Path = typer.Option(..., "--model", help="folder from `recsage push train-reward`"),
    copies: list[str] = typer.Argument(..., help="copies to score"),
) -> None:
    """Score copies with a reward model, best first."""
    from recsage.pipelines.push import score_copies

    _print_rows(score_copies(model, copies), ["score", "copy"], "reward scores")


@push_app.command("generate")
@clean_errors
def push_generate(
    items: Path = typer.Option(..., "--items", help="CSV/JSONL/Parquet with an id column and text columns"),
    out: Path = typer.Option(..., "--out", help="output Parquet (parts are kept next to it for resume)"),
    styles: str = typer.Option(..., "--styles", help="comma-separated style names, e.g. curiosity_gap,question"),
    n: int = typer.Option(8, "--n", min=1, max=32, help="candidates per item and style"),
    reward: Optional[Path] = typer.Option(None, "--reward", help="reward model folder (ranking); without it, first passing candidate wins"),
    library: Optional[Path] = typer.Option(None, "--library", help="extra style library YAML/JSON (merged over the built-ins)"),
    max_chars: int = typer.Option(90, "--max-chars", min=10),
    banned: str = typer.Option("", "--banned", help="comma-separated banned words"),
    language: str = typer.Option("English", "--language"),
    id_field: str = typer.Option("item_id", "--id-field"),
    text_fields: str = typer.Option("title,description", "--text-fields"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="only the first N items"),
    encoding: str = typer.Option("utf-8", "--encoding", help="the items file's text encoding (e.g. latin-1, cp1252)"),
    backend: Optional[str] = BACKEND_OPT, model: Optional[str] = MODEL_OPT, base_url: Optional[str] = URL_OPT,
    json_mode: Optional[str] = JSON_MODE_OPT,
    engine: str = ENGINE_OPT, ray_address: Optional[str] = RAY_ADDRESS_OPT, actors: int = ACTORS_OPT,
    cpus_per_actor: float = CPUS_OPT, gpus_per_actor: float = GPUS_OPT,
) -> None:
    """N candidates per item and style → filters → reward ranking; resumable after a kill (on Ray with --engine ray)."""
    from recsage.generation.pushgen.filters import PushConstraints
    from recsage.pipelines.push import generate_push_batch

    cons = PushConstraints(max_chars=max_chars, banned_words=tuple(w.strip() for w in banned.split(",") if w.strip()), language=language)
    meta = generate_push_batch(items, out, styles=[s.strip() for s in styles.split(",") if s.strip()], n=n, constraints=cons, reward_dir=reward,
                               library=library, llm=_llm_config(backend, model, base_url, json_mode, False), id_field=id_field,
                               text_fields=tuple(t.strip() for t in text_fields.split(",")), limit=limit, encoding=encoding,
                               engine=_engine_config(engine, ray_address, actors, cpus_per_actor, gpus_per_actor))
    console.print_json(json.dumps(meta, default=str))


@app.command("app")
def app_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="bind address (127.0.0.1 unless you mean to expose it)"),
    port: int = typer.Option(8501, "--port"),
) -> None:
    """Start the Streamlit workbench (this process becomes the server: stopping it stops the server)."""
    import os
    import sys

    script = Path(__file__).resolve().parents[1] / "app" / "workbench.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", host, "--server.port", str(port),
           "--server.headless", "true", "--server.maxUploadSize", "20", "--browser.gatherUsageStats", "false"]
    console.print(f"workbench on http://{host}:{port}")
    sys.stdout.flush()
    # exec, not a child process: a SIGTERM to `recsage app` used to leave Streamlit serving with parent PID 1
    os.execv(sys.executable, cmd)
