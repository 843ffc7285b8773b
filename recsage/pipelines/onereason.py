"""OneReason: chains of thought derived from histories, verbalised and verified, exported as SFT
data, and a generative SID model that thinks before it recommends.

Service functions for the CLI (`recsage onereason …`), the workbench and the benchmark.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets import Dataset, leave_one_out
from recsage.generation.onereason.chains import (
    CHAIN_VERSION, NEW_INTEREST, Chain, ChainConfig, InterestVocab, chains_frame, chains_from_frame, derive_chain, derive_chains,
)
from recsage.generation.onereason.sft import perception_records, reasoning_records, write_sft
from recsage.generation.onereason.thinker import LEVELS, ChainThinker
from recsage.generation.onereason.verbalise import ChainVerbaliser, read_verbalised, verbalise_chains_batch
from recsage.generation.onereason.verify import ChainVerifier, chain_facts, deduction_claim, template_text
from recsage.llm import get_backend
from recsage.llm.batch import EngineConfig
from recsage.llm.registry import LLMConfig, backend_for, stage_for
from recsage.recmodels.thinking import ThinkingConfig, ThinkingSIDRecommender
from recsage.tokenizers import SIDTable

THOUGHTS = {"full": LEVELS, "induction": ("induction",), "shuffled": LEVELS}  # shuffled: full chains, each from another random sample


def interest_vocab(dataset: Dataset, key: str = "category", sid_table: SIDTable | None = None) -> InterestVocab:
    if dataset.items is None or not len(dataset.items):
        raise InvalidInputError(f"dataset '{dataset.name}' has no item catalogue to group interests by", field="items")
    return InterestVocab.from_catalog(dataset.items, key, sid_codes=None if sid_table is None else sid_table.codes)


def make_thinker(dataset: Dataset, *, thought: str = "full", interest_key: str = "category", n_interests: int = 3,
                 sid_table: SIDTable | None = None, max_history: int = 20) -> ChainThinker:
    if thought not in THOUGHTS:
        raise InvalidInputError(f"unknown thought {thought!r}; known: {', '.join(THOUGHTS)}", field="thought")
    vocab = interest_vocab(dataset, interest_key, sid_table)
    return ChainThinker(vocab, ChainConfig(n_interests=n_interests, max_history=max_history), THOUGHTS[thought])


def build_thinking_model(dataset: Dataset, sid_table: SIDTable, *, thought: str = "full", interest_key: str = "category",
                         n_interests: int = 3, seed: int = 0, side_features: np.ndarray | None = None,
                         checkpoint_dir: str | None = None, **params: Any) -> ThinkingSIDRecommender:
    """`thought`: full three-level chain, `induction` (one level) or `shuffled` (ungrounded ablation)."""
    from recsage.pipelines.train import _config

    config = _config(ThinkingConfig, params, seed=seed, architecture="lazy", shuffle_thoughts=thought == "shuffled")
    thinker = make_thinker(dataset, thought=thought, interest_key=interest_key, n_interests=n_interests, sid_table=sid_table,
                           max_history=config.max_items)
    return ThinkingSIDRecommender(sid_table, thinker, config, side_features=side_features, checkpoint_dir=checkpoint_dir)


def load_thinking_model(model_dir: str | Path) -> ThinkingSIDRecommender:
    params, arrays = ThinkingSIDRecommender.saved_thinker(model_dir)
    return ThinkingSIDRecommender.from_pretrained(model_dir, ChainThinker.from_state(params, arrays))


def training_chains(dataset: Dataset, *, interest_key: str = "category", sid_table: SIDTable | None = None,
                    config: ChainConfig = ChainConfig(), with_target: bool = True) -> tuple[list[Chain], Counter]:
    """One chain per user's leave-one-out *training* sequence (validation and test items never
    enter): history = the sequence but its last item, deduction = that item's interest."""
    split = leave_one_out(dataset)
    vocab = interest_vocab(dataset, interest_key, sid_table)
    roles = profile_roles(dataset)
    return derive_chains(split.train.sequences, vocab, config, user_ids=split.train.user_ids, with_target=with_target, roles=roles)


def chain_folder_vocab(dataset: Dataset, meta: dict[str, Any]) -> InterestVocab:
    """The interest vocabulary a chain folder was built with (its meta.json: key, and the SID folder for key `sid`)."""
    key = meta.get("interest_key", "category")
    return interest_vocab(dataset, key, SIDTable.load(meta["sid"]) if key == "sid" and meta.get("sid") else None)


def profile_roles(dataset: Dataset) -> dict[int, str]:
    """The role a user's profile states (MovieLens occupation), where the dataset has one."""
    users = dataset.users
    if users is None or "occupation" not in users:
        return {}
    return {int(u): str(o) for u, o in zip(users["user_id"], users["occupation"]) if str(o) and str(o) != "nan"}


def build_cot(prepared: str | Path, out: str | Path, *, interest_key: str = "category", sid: str | Path | None = None,
              n_interests: int = 3, max_users: int | None = None) -> dict[str, Any]:
    """Derives and saves chains (chains.parquet + meta.json) for the training sequences."""
    dataset = Dataset.load(prepared)
    table = SIDTable.load(sid) if sid else None
    t = time.perf_counter()
    chains, rejected = training_chains(dataset, interest_key=interest_key, sid_table=table, config=ChainConfig(n_interests=n_interests))
    if max_users is not None:
        chains = chains[:max_users]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chains_frame(chains).to_parquet(out / "chains.parquet", index=False)
    meta = {"component": "onereason.derive_chains", "version": CHAIN_VERSION, "dataset": dataset.name, "interest_key": interest_key,
            "n_interests": n_interests, "chains": len(chains), "rejected": dict(rejected), "sid": str(sid) if sid else None,
            "hindsight": True, "note": "deduction = the interest of each training sequence's last item (training supervision; "
                                      "validation/test items never enter)", "seconds": round(time.perf_counter() - t, 2)}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def read_chains(cot_dir: str | Path) -> list[Chain]:
    path = Path(cot_dir) / "chains.parquet"
    if not path.exists():
        raise InvalidInputError("no chains.parquet: run `recsage onereason build-cot` first", file=str(Path(cot_dir)))
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 — pyarrow raises several types for a corrupt file
        raise InvalidInputError(f"not a readable Parquet file ({type(e).__name__})", file=str(path)) from None
    return chains_from_frame(frame)


def item_titles(dataset: Dataset) -> dict[int, str]:
    return {int(i): str(t) for i, t in zip(dataset.items["item_id"], dataset.items["title"])}


def verifier_for(dataset: Dataset, vocab: InterestVocab) -> ChainVerifier:
    return ChainVerifier(vocab.names, item_titles(dataset))


def verbalise_chains(prepared: str | Path, cot_dir: str | Path, *, limit: int | None = None, hindsight: bool = False,
                     llm: LLMConfig | None = None, progress: bool = True, engine: EngineConfig | None = None) -> dict[str, Any]:
    """The embedded (or configured) LLM words the first `limit` saved chains; the verifier keeps
    what the chain supports. Resumable: cot_dir/verbalised[-hindsight]/parts."""
    dataset = Dataset.load(prepared)
    meta = json.loads((Path(cot_dir) / "meta.json").read_text()) if (Path(cot_dir) / "meta.json").exists() else {}
    vocab = chain_folder_vocab(dataset, meta)
    chains = read_chains(cot_dir)[: limit if limit is not None else None]
    verbaliser = ChainVerbaliser(backend_for(engine, llm), verifier_for(dataset, vocab), item_titles(dataset))
    out = Path(cot_dir) / ("verbalised-hindsight" if hindsight else "verbalised")
    run = verbalise_chains_batch(verbaliser, chains, out, hindsight=hindsight, progress=progress, engine=engine,
                                 stage=stage_for(engine, llm))
    (out / "meta.json").write_text(json.dumps(run, indent=2))
    return run


def export_sft(prepared: str | Path, sid: str | Path, cot_dir: str | Path, out: str | Path, *, perception_limit: int | None = None) -> dict[str, Any]:
    """Perception records for every item + one reasoning record per saved chain (verified LLM
    text where a verbalisation run has it, the template wording otherwise)."""
    dataset = Dataset.load(prepared)
    table = SIDTable.load(sid)
    table.check_items(dataset.items["raw_id"].tolist())
    chains = read_chains(cot_dir)
    sid_text = [table.text(i) for i in range(table.n_items)]
    texts: dict[int, dict[str, Any]] = {}
    for folder in ("verbalised", "verbalised-hindsight"):
        if (Path(cot_dir) / folder / "parts").exists():
            for r in read_verbalised(Path(cot_dir) / folder).to_dict("records"):
                if r.get("status") in ("verified", "repaired") and not (r.get("hindsight") and folder == "verbalised"):
                    texts.setdefault(int(r["user_id"]), r)
    raw_users = {} if dataset.users is None else {int(u): str(r) for u, r in zip(dataset.users["user_id"], dataset.users["raw_id"])}

    def records():
        yield from perception_records(dataset.items, sid_text, limit=perception_limit)
        yield from reasoning_records(chains, dataset.items, sid_text, raw_users, texts)

    return write_sft(records(), out)


def explain_user(model_dir: str | Path, prepared: str | Path, user_id: int, *, k: int = 10, history: np.ndarray | None = None,
                 llm: LLMConfig | None = None) -> dict[str, Any]:
    """The chain behind a thinking model's recommendations for one user: the structure derived
    from the history, the deduction the model itself wrote (its thought), the wording (template,
    or the LLM's verified text with `llm`), and the top-k it decoded from that thought."""
    model = load_thinking_model(model_dir)
    dataset = Dataset.load(prepared)
    if not 0 <= user_id < dataset.n_users:
        raise InvalidInputError(f"unknown user {user_id} (0..{dataset.n_users - 1})", field="user")
    hist = np.asarray(dataset.sequences()[user_id] if history is None else history, dtype=np.int64)
    thinker: ChainThinker = model.thinker  # type: ignore[assignment]
    chain = derive_chain(hist, thinker.vocab, thinker.config, user_id=user_id,
                         role=profile_roles(dataset).get(user_id)) if len(hist) else None
    titles = item_titles(dataset)
    out: dict[str, Any] = {"user": user_id, "history": [titles[int(i)] for i in hist[-10:]], "chain": None, "model_thought": None}
    if chain is not None:
        thought = thinker.describe(model.generated_thoughts([hist], grounded=True)[0])
        chosen = thought.get("chosen_slot", chain.chosen_slot)
        if chosen >= len(chain.interests):
            chosen = NEW_INTEREST
        chain = Chain(chain.user_id, chain.history, chain.interests, chosen, "model", None, chain.role)
        text, status = template_text(chain, titles), "template"
        if llm is not None:
            verbaliser = ChainVerbaliser(get_backend(config=llm), verifier_for(dataset, thinker.vocab), titles)
            r = verbaliser.verbalise([chain])[0]
            text, status = (r["text"], r["status"]) if r["status"] != "failed" else (text, "failed: template shown")
        out.update({"chain": [{"slot": i.slot + 1, "interest": i.name, "count": i.count, "dynamics": i.dynamics,
                               "examples": [titles[x][:60] for x in i.example_items]} for i in chain.interests],
                    "model_thought": thought, "deduction": deduction_claim(chain), "text": text, "text_status": status})
    ids, scores = model.with_mode("grounded").recommend([hist], k=k)
    out["recommendations"] = [{"rank": r + 1, "item_id": int(i), "title": titles[int(i)], "score": round(float(s), 4)}
                              for r, (i, s) in enumerate(zip(ids[0], scores[0])) if i >= 0]
    return out


def demo_onereason(prepared: str | Path, sid: str | Path, out: str | Path, *, llm: LLMConfig | None = None, train_seconds: float = 20) -> dict[str, Any]:
    """The demo's step: chains for the sample's training sequences, one verbalised by the LLM and
    verified, a few SFT records, and a small thinking model's explained recommendation."""
    out = Path(out)
    meta = build_cot(prepared, out / "cot", sid=sid)
    chains = read_chains(out / "cot")
    dataset = Dataset.load(prepared)
    vocab = interest_vocab(dataset)
    titles = item_titles(dataset)
    backend = get_backend(config=llm or LLMConfig.from_env())
    pick = max(chains[:50], key=lambda c: (len(c.interests), len(c.history)))  # a chain with something to say
    verbaliser = ChainVerbaliser(backend, ChainVerifier(vocab.names, titles), titles)
    t = time.perf_counter()
    worded = verbaliser.verbalise([pick])[0]
    llm_seconds = time.perf_counter() - t
    sft = export_sft(prepared, sid, out / "cot", out / "sft", perception_limit=200)
    from recsage.pipelines.data import load_split

    ds, split = load_split(prepared, "loo")
    model = build_thinking_model(ds, SIDTable.load(sid), dim=64, n_decoder_layers=2, dropout=0.1, lr=3e-3, epochs=20, patience=4,
                                 valid_users=300, max_train_seconds=train_seconds, progress=False).fit(split.train, split.valid)
    model.save_pretrained(out / "thinking")
    from recsage.evaluation import evaluate

    metrics = {mode: round(evaluate(model.with_mode(mode), split.test, (10,), n_items=split.n_items, progress=False)["ndcg@10"], 4)
               for mode in ("think", "grounded", "nothink")}
    user = int(split.test.user_ids[0])
    why = explain_user(out / "thinking", prepared, user, k=3, history=split.test.histories[0])
    return {"chains": meta["chains"], "rejected": meta["rejected"], "model": backend.model_id, "chain_user": pick.user_id,
            "facts": chain_facts(pick, titles), "status": worded["status"], "text": worded.get("text"),
            "problems": worded.get("problems", [])[:3], "llm_seconds": round(llm_seconds, 1), "sft": sft, "ndcg@10": metrics,
            "explained": {"user": user, "deduction": why.get("deduction"), "recommendations": [r["title"][:60] for r in why["recommendations"]]}}


def train_thinking(prepared: str | Path, sid: str, out: str | Path, *, thought: str = "full", seed: int = 0, modes: tuple[str, ...] = ("think", "grounded", "nothink", "race"),
                   side_features: bool = True, **params: Any) -> tuple[ThinkingSIDRecommender, dict[str, Any]]:
    """Trains the thinking model (the generative recipe's data-derived defaults), then scores
    the test split in every decoding mode from the same weights; OUT/metrics.json has them all."""
    from recsage.evaluation import evaluate
    from recsage.pipelines.data import load_split
    from recsage.pipelines.train import train_recommender
    from recsage.tokenizers.item_vectors import collaborative_vectors

    dataset, split = load_split(prepared, "loo")
    side = collaborative_vectors(split.train.sequences, split.n_items, dim=64) if side_features else None
    model, row = train_recommender("thinking", prepared, sid=sid, out=out, seed=seed, dataset=dataset, split=split, side_features=side,
                                   ks=(1, 5, 10), thought=thought, **params)
    row["thought"] = thought
    row["modes"] = {}
    for mode in modes:
        m = evaluate(model.with_mode(mode), split.test, (1, 5, 10), n_items=split.n_items, progress=False, batch_size=512)
        row["modes"][mode] = {k: round(v, 5) for k, v in m.items() if k.startswith(("recall", "ndcg"))}
    (Path(out) / "metrics.json").write_text(json.dumps(row, indent=2, default=str))
    return model, row
