"""CLI parameters out of range or of the wrong type are refused before any work starts (one line, exit 2)."""

import pytest
from typer.testing import CliRunner

from recsage.cli.main import app

runner = CliRunner()
NOWHERE = "/nonexistent/recsage-data"  # had the command started working, it would fail on this path instead
CASES = [  # (name, argv, what the message must name)
    ("levels_zero", ["sid", "fit", "--items", NOWHERE, "--levels", "0", "--out", "x"], "--levels"),
    ("codes_negative", ["sid", "fit", "--items", NOWHERE, "--codes", "-3", "--out", "x"], "--codes"),
    ("codes_not_a_number", ["sid", "fit", "--items", NOWHERE, "--codes", "many", "--out", "x"], "--codes"),
    ("rqvae_epochs_zero", ["sid", "fit", "--items", NOWHERE, "--method", "rqvae", "--epochs", "0", "--out", "x"], "--epochs"),
    ("set_string_for_int", ["train", "sasrec", "--data", NOWHERE, "--out", "{tmp}/a", "--set", "dim=abc"], "--set dim=\"abc\": expected int"),
    ("set_bool_for_float", ["train", "sasrec", "--data", NOWHERE, "--out", "{tmp}/b", "--set", "dropout=true"], "--set dropout=true: expected float"),
    ("set_float_for_int", ["train", "lazy", "--data", NOWHERE, "--out", "{tmp}/c", "--set", "beam_size=2.5"], "expected int"),
    ("set_unknown_key", ["train", "diffgrm", "--data", NOWHERE, "--out", "{tmp}/d", "--set", "noise=1"], "unknown parameter(s) ['noise']"),
    ("max_minutes_zero", ["train", "sasrec", "--data", NOWHERE, "--out", "{tmp}/e", "--max-minutes", "0"], "--max-minutes"),
    ("recommend_k_zero", ["recommend", "--model", NOWHERE, "--data", NOWHERE, "--user", "1", "--k", "0"], "--k"),
]


@pytest.mark.parametrize("name,argv,message", CASES, ids=[c[0] for c in CASES])
def test_bad_parameter_is_refused_up_front(tmp_path, name, argv, message):
    r = runner.invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    out = " ".join(r.output.split())
    assert r.exit_code == 2, out
    assert "Traceback" not in r.output and "not a prepared" not in out and "not found" not in out  # refused before the data was looked at
    assert message in out, out
