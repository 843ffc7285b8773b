import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsage.cli import app
from recsage.core.errors import InvalidInputError
from recsage.datasets import leave_one_out
from recsage.tokenizers import collaborative_vectors, fuse_with_cooccurrence, item_text


def test_item_text_requires_some_text():
    items = pd.DataFrame({"raw_id": ["a", "b"], "title": ["Drill", ""], "description": ["", ""], "brand": ["", ""], "categories": [[], []]})
    with pytest.raises(InvalidInputError, match="item b"):
        item_text(items)


def test_collaborative_vectors_put_co_consumed_items_close(scientific):
    train = leave_one_out(scientific).train.sequences
    v = collaborative_vectors(train, scientific.n_items, dim=32)
    assert v.shape == (scientific.n_items, 32) and np.isfinite(v).all()
    # a frequent consecutive pair is closer than a random pair on average
    pairs = np.array([(s[i], s[i + 1]) for s in train[:2000] for i in range(len(s) - 1)])
    sim_pairs = (v[pairs[:, 0]] * v[pairs[:, 1]]).sum(1).mean()
    rnd = np.random.default_rng(0).integers(0, scientific.n_items, size=(len(pairs), 2))
    assert sim_pairs > (v[rnd[:, 0]] * v[rnd[:, 1]]).sum(1).mean() + 0.1


def test_fusion_pulls_neighbours_together(sci_text_vectors):
    seqs = [np.array([0, 1]), np.array([0, 1]), np.array([2, 3])]
    fused = fuse_with_cooccurrence(sci_text_vectors[:10], seqs, gamma=0.5)
    before = sci_text_vectors[0] @ sci_text_vectors[1]
    assert fused[0] @ fused[1] > before
    with pytest.raises(InvalidInputError):
        fuse_with_cooccurrence(sci_text_vectors[:10], seqs, gamma=2)


def test_cli_sid_fit_and_stats_on_bundled_sample(tmp_path, bundled_data):
    runner = CliRunner()
    prep = tmp_path / "sci"
    assert runner.invoke(app, ["data", "prepare", "scientific", "--src", str(bundled_data / "scientific-sample"), "--out", str(prep)]).exit_code == 0
    out = tmp_path / "sid"
    r = runner.invoke(app, ["sid", "fit", "--items", str(prep), "--method", "balanced", "--levels", "2", "--codes", "32", "--collision", "reassign", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_items"] == 3311 and rep["collision"]["collision_rate_after"] == 0.0
    assert rep["codes"] == {"value": 32, "why": "set by you"}
    r = runner.invoke(app, ["sid", "stats", str(out)])
    assert r.exit_code == 0 and "<a_" in r.output
    r = runner.invoke(app, ["sid", "fit", "--items", str(prep), "--method", "rqkmeans", "--codes", "5000", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "codes per level" in r.output


def test_default_codes_follow_the_catalogue_size():
    from recsage.pipelines.sid import default_codes

    # the papers' 256 on Beauty (12,101 items) and Scientific (4,344); smaller catalogues get fewer codes
    assert [default_codes(n, 3) for n in (12101, 4344, 1682, 85, 3)] == [256, 256, 128, 32, 8]
    assert default_codes(10**7, 3) == 256 and default_codes(5000, 2) == 256 and default_codes(1000, 4) == 16
    for n in (3, 85, 1682, 4344):
        c = default_codes(n, 3)
        assert c ** 2 >= 4 * n and (c == 8 or (c // 2) ** 2 < 4 * n)
