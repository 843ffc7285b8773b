"""OneReason: chains derived from real Scientific users, the verifier, SFT export loaded with
`datasets`, the thinking model trained a few steps (thinking and not), the verbaliser scripted
and with the real embedded LLM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsage.core.errors import InvalidInputError
from recsage.generation.onereason.chains import NEW_INTEREST, ChainConfig, ChainRejected, InterestVocab, derive_chain, derive_chains, dynamics_of
from recsage.generation.onereason.thinker import ChainThinker
from recsage.generation.onereason.verbalise import ChainVerbaliser, read_verbalised, verbalise_chains_batch
from recsage.generation.onereason.verify import ChainVerifier, template_text
from recsage.llm.scripted import ScriptedBackend


@pytest.fixture(scope="module")
def scientific(shared_data, tmp_path_factory):
    from recsage.datasets import Dataset
    from recsage.pipelines import prepare_dataset

    out = tmp_path_factory.mktemp("or") / "scientific"
    prepare_dataset("scientific", shared_data / "amazon-scientific", out)
    return out, Dataset.load(out)


@pytest.fixture(scope="module")
def sample(bundled_data, tmp_path_factory):
    """The bundled Scientific sample with a synthetic (unit-test-only) unique 3-level codebook."""
    from recsage.datasets import Dataset
    from recsage.pipelines import prepare_dataset
    from recsage.tokenizers import SIDTable

    root = tmp_path_factory.mktemp("or-sample")
    prepare_dataset("scientific", bundled_data / "scientific-sample", root / "sci")
    ds = Dataset.load(root / "sci")
    n = ds.n_items
    SIDTable(np.stack([np.arange(n) // 64, np.arange(n) % 64, np.zeros(n, dtype=int)], 1)).save(root / "sid")
    return root, ds


def test_chains_on_real_scientific_users_are_consistent_with_the_history(scientific):
    from recsage.pipelines.onereason import interest_vocab, training_chains

    path, ds = scientific
    chains, rejected = training_chains(ds)
    vocab = interest_vocab(ds)
    assert len(chains) + sum(rejected.values()) == ds.n_users
    assert len(chains) > 8000
    for c in chains[:500]:
        assert c.chosen_by == "target" and c.target is not None
        assert sum(i.count for i in c.interests) <= len(c.history)
        counts = [i.count for i in c.interests]
        assert counts == sorted(counts, reverse=True)
        for i in c.interests:  # every position is a history item of that interest
            assert all(vocab.item_keys[c.history[p]] == i.key for p in i.positions) and len(i.positions) == i.count
            assert set(i.example_items) <= set(c.history)
        tk = vocab.item_keys[c.target]
        assert (c.chosen_slot == NEW_INTEREST) == all(i.key != tk for i in c.interests)
    # nothing outside the training sequences: the target of a chain is its user's training-sequence last item
    from recsage.datasets import leave_one_out

    train = leave_one_out(ds).train
    first = dict(zip(train.user_ids.tolist(), train.sequences))
    assert all(c.target == first[c.user_id][-1] for c in chains[:200])
    names = {i.name for c in chains for i in c.interests}
    assert "Industrial & Scientific" not in names  # the shared root is skipped: categories below it


def test_dynamics_rules():
    assert dynamics_of([4], 10, 3) == "one-off"
    assert dynamics_of([0, 3, 6, 9], 10, 3) == "periodic"
    assert dynamics_of([1, 7, 8, 9], 10, 3) == "rising"
    assert dynamics_of([0, 1, 2], 10, 3) == "long-term"


def test_short_histories_and_unknown_items_are_counted_rejections():
    vocab = InterestVocab("category", np.array([0, 0, 1, 1]), ("a", "b"))
    with pytest.raises(ChainRejected, match="needs ≥ 2"):
        derive_chain([1], vocab)
    with pytest.raises(InvalidInputError, match="not in the catalogue"):
        derive_chain([0, 9], vocab)
    chains, rejected = derive_chains([[0, 1, 2], [3, 1], [0, 7, 1]], vocab)
    assert len(chains) == 1 and rejected == {"history too short": 1, "item outside the catalogue": 1}
    rule = derive_chain([0, 1, 2, 3, 3], vocab, ChainConfig(recent_window=2))
    assert rule.chosen_by == "rule" and rule.chosen.name == "b"


@pytest.fixture(scope="module")
def sample_chain(sample):
    from recsage.pipelines.onereason import interest_vocab, item_titles, training_chains

    _, ds = sample
    chains, _ = training_chains(ds)
    chain = max(chains[:50], key=lambda c: (len(c.interests), len(c.history)))
    return chain, ChainVerifier(interest_vocab(ds).names, item_titles(ds)), item_titles(ds), interest_vocab(ds)


def test_verifier_accepts_faithful_text_and_rejects_fabrications(sample_chain):
    chain, verifier, titles, vocab = sample_chain
    faithful = template_text(chain, titles)
    assert verifier.verify(faithful, chain).status == "verified"
    top = chain.interests[0]
    paraphrase = {"induction": f"Most of the history, {top.count} items, is about {top.name}.",
                  "abduction": f'{top.name} is {top.dynamics}; "{titles[top.example_items[0]][:40]}" is one of them.',
                  "deduction": "The next purchase likely continues one of these interests."}
    assert verifier.verify(paraphrase, chain).status == "verified"
    outside = next(t for i, t in titles.items() if i not in chain.history and len(t) > 20)
    other_interest = next(n for n in vocab.names if n not in {i.name for i in chain.interests} and len(n) > 6)
    fabricated = [
        f'The user bought "{outside[:40]}".',  # an item not in the history
        f"The history has {len(chain.history) + 17} items.",  # a count the chain does not have
        "It cites <a_999> as the main code.",  # a SID not in the chain
        f"They also love {other_interest}.",  # an interest this history does not show
    ]
    for bad in fabricated:
        assert verifier.check_sentence(bad, chain) is not None, bad
        v = verifier.verify({**faithful, "induction": faithful["induction"] + " " + bad}, chain)
        assert v.status == "repaired" and bad not in v.text["induction"] and v.problems
    junk = {p: " ".join(fabricated) for p in ("induction", "abduction", "deduction")}
    rejected = verifier.verify(junk, chain)
    assert rejected.status == "rejected" and rejected.text == faithful  # nothing unsupported is ever kept


def test_scripted_verbaliser_batch_resumes_and_counts_verdicts(sample_chain, tmp_path):
    chain, verifier, titles, _ = sample_chain
    good = json.dumps(template_text(chain, titles))
    backend = ScriptedBackend(lambda m: good)
    verbaliser = ChainVerbaliser(backend, verifier, titles)
    meta = verbalise_chains_batch(verbaliser, [chain], tmp_path / "v", progress=False)
    assert meta["statuses"] == {"verified": 1} and backend.calls == 1
    again = verbalise_chains_batch(verbaliser, [chain], tmp_path / "v", progress=False)
    assert again["new"] == 0 and backend.calls == 1  # resumed: nothing redone
    prompt = {}
    ChainVerbaliser(ScriptedBackend(lambda m: prompt.setdefault("m", m) and "not json"), verifier, titles).verbalise([chain])
    assert '<data name="facts">' in prompt["m"][-1]["content"]
    frame = read_verbalised(tmp_path / "v")
    assert frame.loc[0, "status"] == "verified"


def test_sft_export_loads_with_datasets(sample, tmp_path):
    import datasets

    from recsage.pipelines.onereason import build_cot, export_sft

    root, _ = sample
    build_cot(root / "sci", tmp_path / "cot")
    stats = export_sft(root / "sci", root / "sid", tmp_path / "cot", tmp_path / "sft", perception_limit=10)
    assert stats["by_task"]["sid_to_title"] == 10 and stats["by_task"]["next_item_cot"] > 1000
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "sft" / "sft.jsonl"), split="train")
    assert len(ds) == stats["records"]
    rec = ds[len(ds) - 1]
    assert [m["role"] for m in rec["messages"]] == ["system", "user", "assistant"]
    answer = rec["messages"][-1]["content"]
    assert answer.startswith("<think>") and "</think><a_" in answer and rec["metadata"]["hindsight"] is True
    assert rec["metadata"]["user_id"] and rec["metadata"]["text_source"] == "template"
    assert "<a_" in rec["messages"][1]["content"]  # history items rendered as SID + title


def test_thinking_model_trains_a_few_steps_and_decodes_in_every_mode(sample, tmp_path):
    from recsage.pipelines.data import load_split
    from recsage.pipelines.onereason import build_thinking_model, load_thinking_model
    from recsage.pipelines.train import load_model
    from recsage.tokenizers import SIDTable

    root, _ = sample
    ds, split = load_split(root / "sci", "loo")
    table = SIDTable.load(root / "sid")
    tiny = dict(dim=32, n_decoder_layers=1, n_heads=2, epochs=1, max_steps_per_epoch=3, batch_size=64, valid_users=50, progress=False, beam_size=10)
    model = build_thinking_model(ds, table, **tiny).fit(split.train, split.valid)
    assert model.train_result_.epochs_run == 1
    hist = split.test.histories[:8]
    for mode in ("think", "grounded", "nothink", "race"):
        ids, scores = model.with_mode(mode).recommend(hist, k=5)
        assert ids.shape == (8, 5)
        for h, row in zip(hist, ids):
            got = row[row >= 0]
            assert len(set(got)) == len(got) and not set(got) & set(h.tolist())
    thought = model.generated_thoughts(hist[:2], grounded=True)
    assert np.array_equal(thought[:, : model.thinker.n_forced], model.thinker.thoughts(hist[:2])[:, : model.thinker.n_forced])
    model.save_pretrained(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert np.array_equal(again.with_mode("think").recommend(hist, k=5)[0], model.recommend(hist, k=5)[0])
    assert type(load_thinking_model(tmp_path / "m")).__name__ == "ThinkingSIDRecommender"
    # without thinking: every sample trained with the thought empty; the one-level and shuffled ablations build too
    plain = build_thinking_model(ds, table, nothink_fraction=1.0, **tiny).fit(split.train, None)
    assert plain.with_mode("nothink").recommend(hist, k=5)[0].shape == (8, 5)
    for thought in ("induction", "shuffled"):
        m = build_thinking_model(ds, table, thought=thought, **tiny).fit(split.train, None)
        assert m.with_mode("grounded").recommend(hist[:2], k=3)[0].shape == (2, 3)
    with pytest.raises(InvalidInputError, match="unknown decode mode"):
        model.with_mode("dream")
    with pytest.raises(InvalidInputError, match="unknown thought"):
        build_thinking_model(ds, table, thought="vibes")


def test_thinker_tokens_follow_the_chain():
    vocab = InterestVocab("category", np.array([0, 0, 1, 2]), ("a", "b", "c"))
    thinker = ChainThinker(vocab, ChainConfig(n_interests=2))
    assert thinker.sizes == (4, 4, 5, 5, 3) and thinker.n_forced == 4
    tokens = thinker.thoughts([np.array([0, 1, 2])], np.array([3]))[0]
    assert list(tokens) == [0, 1, 0, 3, 2]  # keys a, b; a long-term, b one-off; target (key c) is a new interest
    assert thinker.describe(tokens) == {"interests": ["a", "b"], "dynamics": ["long-term", "one-off"], "chosen_slot": NEW_INTEREST}
    one = ChainThinker(vocab, levels=("induction",))
    assert one.n_forced == len(one.sizes) == 3
    with pytest.raises(InvalidInputError, match="levels"):
        ChainThinker(vocab, levels=("deduction", "induction"))


@pytest.mark.slow
def test_real_llm_verbalises_a_real_chain_and_the_verifier_rules(sample_chain, small_llm):
    chain, verifier, titles, _ = sample_chain
    r = ChainVerbaliser(small_llm, verifier, titles).verbalise([chain])[0]
    assert r["status"] in ("verified", "repaired", "rejected"), r
    assert all(r["text"][p].strip() for p in ("induction", "abduction", "deduction"))
    recheck = verifier.verify(r["text"], chain)
    assert recheck.status == "verified"  # whatever is kept is supported by the chain
