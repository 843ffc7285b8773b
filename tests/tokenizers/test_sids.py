import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsage.core.errors import InvalidInputError
from recsage.recmodels.decoding import constrained_beam_search
from recsage.tokenizers import SIDPrefixIndex, SIDTable, collision_rate, make_unique, sid_to_text, text_to_sid
from recsage.tokenizers.collisions import dedup_suffix, reassign_last_level


def test_suffix_dedup_tiger_style():
    codes = np.array([[1, 2], [1, 2], [3, 4], [1, 2]])
    out = dedup_suffix(codes)
    assert out[:, -1].tolist() == [0, 1, 0, 2]
    assert collision_rate(codes) == 0.75 and collision_rate(out) == 0.0


def test_reassign_moves_to_next_free_leaf():
    codes = np.array([[1, 2], [1, 2], [1, 3]])
    cand = np.array([[2, 3, 4], [2, 3, 4], [3, 2, 4]])
    out, unplaced = reassign_last_level(codes, cand)
    assert out.tolist() == [[1, 2], [1, 4], [1, 3]] and unplaced == 0


def test_reassign_falls_back_when_prefix_is_full():
    codes = np.array([[0, 0], [0, 0], [0, 0]])
    out, info = make_unique(codes, "reassign", np.array([[0, 1]] * 3))
    assert info["fell_back_to_suffix"] and info["collision_rate_after"] == 0.0


def test_sid_text_roundtrip_and_errors():
    assert sid_to_text((12, 3, 201)) == "<a_12><b_3><c_201>"
    assert text_to_sid("<a_12><b_3><c_201>") == (12, 3, 201)
    with pytest.raises(InvalidInputError):
        text_to_sid("<a_1><c_2>")
    with pytest.raises(InvalidInputError):
        text_to_sid("hello")


def test_sid_table_item_set_check(tmp_path):
    t = SIDTable(np.array([[0, 1], [1, 0]]), fingerprint="abc")
    back = SIDTable.load(t.save(tmp_path / "t"))
    assert back.item("<a_1><b_0>") == 1 and back.text(0) == "<a_0><b_1>"
    with pytest.raises(InvalidInputError, match="different item set"):
        back.check_items(["x", "y", "z"])
    with pytest.raises(InvalidInputError, match="different item set"):
        back.check_items(["x", "y"])


def test_published_index_on_beauty(shared_data):
    from recsage.datasets import load_dataset
    from recsage.pipelines.sid import published_sid_table

    ds = load_dataset("beauty", shared_data / "amazon-beauty")
    t = published_sid_table(ds, "published")
    assert t.n_items == 12101 and t.is_unique and t.n_levels == 5  # 4 LETTER levels + suffix for its 11 shared SIDs
    idx = SIDPrefixIndex(t)
    assert len(idx) == 12101
    assert len(idx.allowed(())) == 197  # first-level codes used (SOURCE.md)


def test_prefix_index_lookup_and_mask():
    t = SIDTable(np.array([[0, 1, 2], [0, 1, 3], [2, 0, 0]]))
    idx = SIDPrefixIndex(t)
    assert idx.allowed(()).tolist() == [0, 2]
    assert idx.allowed((0, 1)).tolist() == [2, 3]
    assert idx.allowed((1,)).tolist() == []
    assert idx.item((0, 1, 3)) == 1 and idx.item((0, 1)) is None
    mask = idx.logits_mask([(0,), (2,)], vocab_size=4)
    assert mask[0].tolist() == [float("-inf"), 0.0, float("-inf"), float("-inf")]
    with pytest.raises(InvalidInputError, match="unique"):
        SIDPrefixIndex(SIDTable(np.array([[0, 1], [0, 1]])))


@settings(max_examples=60, deadline=None)
@given(
    n_items=st.integers(1, 40),
    n_levels=st.integers(1, 4),
    vocab=st.integers(2, 6),
    beam=st.integers(1, 8),
    seed=st.integers(0, 10_000),
)
def test_constrained_beam_search_only_emits_valid_sids(n_items, n_levels, vocab, beam, seed):
    rng = np.random.default_rng(seed)
    codes = np.unique(rng.integers(0, vocab, size=(n_items, n_levels)), axis=0)
    index = SIDPrefixIndex(SIDTable(codes))

    def step(q, prefixes):  # adversarial random scores, favouring invalid tokens as often as not
        return np.log(rng.dirichlet(np.ones(vocab), size=len(q)))

    items, scores = constrained_beam_search(step, index, n_queries=3, beam_size=beam, k=beam)
    for row, srow in zip(items, scores):
        valid = row[row >= 0]
        assert len(set(valid.tolist())) == len(valid)  # de-duplicated
        assert all(0 <= i < len(codes) for i in valid)
        assert len(valid) == min(beam, len(codes))  # the beam always fills up with real items
        assert (np.diff(srow[: len(valid)]) <= 1e-12).all()


def test_beam_search_finds_the_best_item():
    codes = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    index = SIDPrefixIndex(SIDTable(codes))
    pref = {(): [0.1, 0.9], (1,): [0.8, 0.2], (0,): [0.5, 0.5]}

    def step(q, prefixes):
        return np.log(np.array([pref[tuple(p)] for p in prefixes]))

    items, scores = constrained_beam_search(step, index, n_queries=1, beam_size=4)
    assert items[0].tolist() == [2, 3, 0, 1]
    assert np.isclose(scores[0, 0], np.log(0.9 * 0.8))
