"""Bytes a loader cannot read as text — truncated .gz, Latin-1 or binary where UTF-8 is declared,
pathologically nested JSON — end as one clean CLI error naming the file and line (synthetic files,
named as such). A UTF-8 BOM is not an error."""

import gzip

import pytest
from typer.testing import CliRunner

from recsage.cli.main import app

runner = CliRunner()
ROWS = "".join(f'{{"user_id": "u{u}", "item_id": "i{i}", "timestamp": {10 * u + i}}}\n' for u in range(4) for i in range(5))


def truncated_gz(path):
    data = gzip.compress(ROWS.encode() * 20)
    path.write_bytes(data[: len(data) // 2])


def latin1(path):
    path.write_bytes(ROWS.encode() + '{"user_id": "Zoë", "item_id": "i1", "timestamp": 999}\n'.encode("latin-1"))


def binary(path):
    path.write_bytes(bytes(range(255, -1, -1)) * 40)


def nested(path):
    path.write_text(ROWS + '{"user_id": "u9", "item_id": "i1", "timestamp": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n")


def long_line(path):
    path.write_text(ROWS + '{"user_id": "u9", "item_id": "i1", "timestamp": 1, "note": "' + "x" * (17 * 2**20) + '"}\n')


def bad_gzip_header(path):
    path.write_bytes(b"this is not gzip at all\n" * 10)


CASES = [  # (synthetic file name, writer, what the message must say, the line it must name)
    ("synthetic_truncated.jsonl.gz", truncated_gz, "truncated or corrupt gzip", "line "),
    ("synthetic_latin1.jsonl", latin1, "not utf-8 text", "line 21"),
    ("synthetic_binary.jsonl", binary, "not utf-8 text", "line 1"),
    ("synthetic_nested.jsonl", nested, "nested too deeply", "line 21"),
    ("synthetic_not_gzip.jsonl.gz", bad_gzip_header, "gzip", "line 1"),
    ("synthetic_long_line.jsonl", long_line, "longer than 16 MiB", "line 21"),
    ("synthetic_truncated.csv.gz", truncated_gz, "truncated or corrupt gzip", ""),
]


@pytest.mark.parametrize("name,write,message,line", CASES, ids=[c[0] for c in CASES])
def test_unreadable_bytes_are_one_clean_error(tmp_path, name, write, message, line):
    src = tmp_path / name
    write(src)
    r = runner.invoke(app, ["data", "prepare", "generic", "--src", str(src), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert "Traceback" not in r.output and "Aborted" not in r.output
    assert name in text and message in text and line in text, text


def test_amazon_reviews_truncated_gz_names_file_and_line(tmp_path):
    review = '{"reviewerID": "A1", "asin": "B1", "unixReviewTime": 1, "overall": 5.0}\n'
    data = gzip.compress(review.encode() * 2000)
    src = tmp_path / "synthetic_reviews.json.gz"
    src.write_bytes(data[: len(data) // 2])
    r = runner.invoke(app, ["data", "prepare", "amazon-reviews", "--src", str(src), "--out", str(tmp_path / "out")])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "truncated or corrupt gzip" in text and "synthetic_reviews.json.gz" in text and "line 826" in text


def test_amazon_reviews_folder_without_one_review_file_is_named(tmp_path):
    for files, message in (([], "no file matching '*.json*'"), (["a.json.gz", "b.json.gz"], "several files match '*.json*'")):
        src = tmp_path / f"synthetic_{len(files)}"
        src.mkdir()
        for f in files:
            (src / f).write_bytes(gzip.compress(b"{}\n"))
        r = runner.invoke(app, ["data", "prepare", "amazon-reviews", "--src", str(src), "--out", str(tmp_path / "out")])
        text = " ".join(r.output.split())
        assert r.exit_code == 2 and message in text and src.name in text and "Traceback" not in r.output, text
    # a loader that takes one file, handed a folder
    r = runner.invoke(app, ["data", "prepare", "generic", "--src", str(tmp_path / "synthetic_0"), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output


def test_latin1_reads_with_encoding(tmp_path):
    src = tmp_path / "synthetic_latin1.jsonl"
    latin1(src)
    r = runner.invoke(app, ["data", "prepare", "generic", "--src", str(src), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "--encoding latin-1" in " ".join(r.output.split())
    r = runner.invoke(app, ["data", "prepare", "generic", "--src", str(src), "--out", str(tmp_path / "out"), "--encoding", "latin-1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["data", "prepare", "generic", "--src", str(src), "--out", str(tmp_path / "out"), "--encoding", "klingon"])
    assert r.exit_code == 2 and "unknown encoding 'klingon'" in r.output


def test_a_utf8_bom_is_accepted(tmp_path):
    src = tmp_path / "synthetic_bom.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + ROWS.encode())
    r = runner.invoke(app, ["data", "prepare", "generic", "--src", str(src), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output


VALUE_CASES = [  # (name, CSV body after the header, extra mapping, what the message must say)
    ("nan_rating", "u1,i1,1,nan\n", ",rating=r", "expected a finite number"),
    ("inf_rating", "u1,i1,1,inf\n", ",rating=r", "expected a finite number"),
    ("inf_timestamp", "u1,i1,inf,4\n", ",rating=r", "expected an integer"),
    ("huge_timestamp", "u1,i1,1" + "0" * 30 + ",4\n", ",rating=r", "out of the 64-bit range"),
    ("shifted_columns", "u1,i1,1,4,extra\n", ",rating=r", "malformed CSV"),
]


@pytest.mark.parametrize("name,body,extra,message", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_values_that_parse_but_are_wrong_are_refused_or_counted(tmp_path, name, body, extra, message):
    src = tmp_path / f"synthetic_{name}.csv"
    src.write_text("u,i,t,r\nu0,i0,1,3\nu0,i2,2,4\n" + body)
    argv = ["data", "prepare", "generic", "--src", str(src), "--out", str(tmp_path / "out"), "--mapping", "user=u,item=i,timestamp=t" + extra]
    r = runner.invoke(app, argv)
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and message in out and src.name in out and "Traceback" not in r.output, out
    if name != "shifted_columns":  # with --skip-bad the row is counted, never written
        r = runner.invoke(app, argv + ["--skip-bad"])
        assert r.exit_code == 0, r.output
        import json

        report = json.loads((tmp_path / "out" / "validation_report.json").read_text())
        assert report["n_skipped"] == 1 and report["examples"][0]["record"] == "line 4", report


def test_an_empty_ratings_file_is_refused(tmp_path):
    src = tmp_path / "synthetic_empty.csv"
    src.write_bytes(b"")
    r = runner.invoke(app, ["data", "prepare", "generic", "--src", str(src), "--out", str(tmp_path / "out")])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and src.name in out and "Traceback" not in r.output, out


def _movielens_latin1_user(tmp_path, shared_data):
    import shutil

    src = tmp_path / "synthetic_ml"
    shutil.copytree(shared_data / "movielens-100k", src)
    with open(src / "u.user", "ab") as f:
        f.write("944|30|F|ingénieure|75001\n".encode("latin-1"))
    return src, "u.user", "line 944"


def _letter_latin1_items(tmp_path, shared_data):
    src = tmp_path / "synthetic_letter"
    src.mkdir()
    (src / "X.inter.json").write_text('{"1": [0, 1, 2], "2": [1, 2, 0], "3": [2, 0, 1]}')
    (src / "X.item.json").write_bytes('{"0": {"title": "a"},\n "1": {"title": "b"},\n "2": {"title": "crème"}}'.encode("latin-1"))
    return src, "X.item.json", "line 3"


def _reviews_latin1_line(tmp_path, shared_data):
    src = tmp_path / "synthetic_reviews.json"
    rows = [f'{{"reviewerID": "A{u}", "asin": "B{i}", "unixReviewTime": {u * 10 + i}, "overall": 5.0, "summary": "ok"}}' for u in range(3) for i in range(3)]
    rows[4] = rows[4].replace('"ok"', '"très bien"')
    src.write_bytes("\n".join(rows).encode("latin-1") + b"\n")
    return src, "synthetic_reviews.json", "line 5"


@pytest.mark.parametrize("kind,make", [("movielens", _movielens_latin1_user), ("amazon", _letter_latin1_items), ("amazon-reviews", _reviews_latin1_line)],
                         ids=["movielens", "amazon", "amazon-reviews"])
def test_every_named_loader_names_the_line_and_takes_encoding(tmp_path, shared_data, kind, make):
    """Latin-1 bytes where a named format expects UTF-8: one clean error naming file, line and the
    expected encoding, offering --encoding; with it the same source loads."""
    src, file, line = make(tmp_path, shared_data)
    r = runner.invoke(app, ["data", "prepare", kind, "--src", str(src), "--out", str(tmp_path / "out")])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert file in text and line in text and "not utf-8 text" in text and "--encoding latin-1" in text, text
    r = runner.invoke(app, ["data", "prepare", kind, "--src", str(src), "--out", str(tmp_path / "out"), "--encoding", "latin-1"])
    assert r.exit_code == 0, r.output
