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


def bad_gzip_header(path):
    path.write_bytes(b"this is not gzip at all\n" * 10)


CASES = [  # (synthetic file name, writer, what the message must say, the line it must name)
    ("synthetic_truncated.jsonl.gz", truncated_gz, "truncated or corrupt gzip", "line "),
    ("synthetic_latin1.jsonl", latin1, "not UTF-8", "line 21"),
    ("synthetic_binary.jsonl", binary, "not UTF-8", "line 1"),
    ("synthetic_nested.jsonl", nested, "nested too deeply", "line 21"),
    ("synthetic_not_gzip.jsonl.gz", bad_gzip_header, "gzip", "line 1"),
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


def test_a_utf8_bom_is_accepted(tmp_path):
    src = tmp_path / "synthetic_bom.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + ROWS.encode())
    r = runner.invoke(app, ["data", "prepare", "generic", "--src", str(src), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
