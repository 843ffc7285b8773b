"""The incremental beam decoder (cached cross-attention and self-attention keys/values) must
give the same hidden states as the training-time decoder, for both architectures. Random
weights and synthetic codes: this is a numerical identity, not a quality check."""

import numpy as np
import pytest
import torch

from recsage.recmodels.generative import GenerativeConfig, GenerativeModule, IncrementalBeamDecoder


@pytest.mark.parametrize("arch", ["lazy", "encoder-decoder"])
def test_incremental_decoder_matches_full_decode(arch):
    torch.manual_seed(0)
    codes = np.random.default_rng(0).integers(0, 8, size=(50, 3))
    cfg = GenerativeConfig(architecture=arch, dim=32, n_heads=4, n_decoder_layers=2, n_encoder_layers=1, max_items=5, trie_softmax=False)
    m = GenerativeModule(50, codes, cfg).eval()
    hist = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5], [0, 0, 0, 0, 7]])
    with torch.no_grad():
        ctx, pad = m.encode(hist)
        dec = IncrementalBeamDecoder(m, ctx, pad)
        steps = [
            (np.arange(3), np.zeros((3, 0), np.int64)),
            (np.repeat(np.arange(3), 2), np.array([[1], [2], [1], [3], [4], [0]])),  # a grid: 2 beams per query
            (np.array([0, 2, 2]), np.array([[2, 5], [4, 1], [0, 7]])),  # not a grid; parents reordered
        ]
        for q, prefixes in steps:
            got = dec.step(q, prefixes)
            want = m.decode(ctx[q], pad[q], torch.from_numpy(prefixes + m.vocab.offsets[: prefixes.shape[1]]))[:, -1]
            assert torch.allclose(got, want, atol=1e-5)
        with pytest.raises(RuntimeError, match="previous level"):
            dec.step(np.array([1]), np.array([[2, 5, 0]]))  # (1, [2, 5]) was never decoded


def test_trie_softmax_scores_are_item_log_probabilities():
    """With the softmax restricted to the trie, an exhaustive beam scores every item and the
    probabilities sum to 1; the training loss is the mean per-level NLL under the same softmax."""
    from recsage.recmodels.decoding import constrained_beam_search
    from recsage.tokenizers import SIDTable
    from recsage.tokenizers.prefix_index import SIDPrefixIndex

    torch.manual_seed(0)
    codes = np.unique(np.random.default_rng(1).integers(0, 4, size=(40, 3)), axis=0)  # synthetic unique SIDs
    index = SIDPrefixIndex(SIDTable(codes))
    cfg = GenerativeConfig(dim=16, n_heads=2, n_decoder_layers=1, max_items=4, trie_softmax=True)
    m = GenerativeModule(len(codes), codes, cfg, trie=index.children).eval()
    hist = torch.tensor([[0, 1, 2, 3]])
    with torch.no_grad():
        ctx, pad = m.encode(hist)
        dec = IncrementalBeamDecoder(m, ctx, pad)

        def step(q, prefixes):
            return torch.log_softmax(m.level_logits(dec.step(q, prefixes), prefixes.shape[1]), -1).numpy()

        items, scores = constrained_beam_search(step, index, 1, beam_size=len(codes), renormalize=True)
        assert sorted(items[0].tolist()) == list(range(len(codes)))
        assert np.exp(scores[0]).sum() == pytest.approx(1.0, abs=1e-6)
        # the training loss of each item equals minus its beam log-probability / levels
        for i in (0, 7, len(codes) - 1):
            loss = m(hist, torch.from_numpy(codes[i : i + 1]))
            assert float(loss) == pytest.approx(-scores[0][items[0] == i][0] / 3, abs=1e-4)


def test_history_dropout_hides_older_items_in_training_only():
    """With history_dropout near 1 a training step sees only the newest history item; eval mode
    sees the whole history (synthetic codes, dropout otherwise off)."""
    torch.manual_seed(0)
    codes = np.random.default_rng(2).integers(0, 6, size=(30, 3))
    cfg = GenerativeConfig(dim=16, n_heads=2, n_decoder_layers=1, max_items=5, dropout=0.0, history_dropout=0.999999, trie_softmax=False)
    m = GenerativeModule(len(codes), codes, cfg)
    hist, newest_only = torch.tensor([[3, 9, 4, 7, 2]]), torch.tensor([[0, 0, 0, 0, 2]])
    target = torch.from_numpy(codes[5:6])
    train_loss = float(m.train()(hist, target).detach())
    with torch.no_grad():
        m.eval()
        assert train_loss == pytest.approx(float(m(newest_only, target)), abs=1e-5)
        assert float(m(hist, target)) != pytest.approx(train_loss, abs=1e-5)


@pytest.mark.parametrize("arch", ["lazy", "encoder-decoder"])
def test_side_features_reach_the_context_and_padding_is_ignored(arch):
    """Both architectures take side information through the one ItemEncoder hook, and the
    encoder-decoder's padded history tokens are masked, not attended to (synthetic codes)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 6, size=(20, 3))
    side = rng.normal(size=(20, 4)).astype(np.float32)
    cfg = GenerativeConfig(architecture=arch, dim=16, n_heads=2, n_decoder_layers=1, n_encoder_layers=1, max_items=4, trie_softmax=False)
    m = GenerativeModule(20, codes, cfg, side_features=side).eval()
    hist = torch.tensor([[0, 0, 3, 5]])
    with torch.no_grad():
        before, pad = m.encode(hist)
        m.items.side[3] += 1.0  # the features of history id 3 (ids are shifted: 0 is padding)
        after, _ = m.encode(hist)
        assert not torch.allclose(before[~pad], after[~pad])
        if arch == "encoder-decoder":  # the pad slots' content does not leak into the real positions
            m.items.side[3] -= 1.0
            m.token.weight[0] += 5.0
            moved, _ = m.encode(hist)
            assert torch.allclose(before[~pad], moved[~pad], atol=1e-5)
