"""The files the batch commands read — push items and style libraries, tagcf user lists and role
lists — each bad one ends in exit 2, no traceback, and the file, line and field named
(synthetic files, named as such). The LLM is the scripted server (`fake_llm`): a good row before a
bad one is processed as it would be, and the bad one still stops the command cleanly."""

from __future__ import annotations

import gzip

import pytest
from typer.testing import CliRunner

from recsage.cli.main import app

GOOD = '{"item_id": "1", "title": "Digital pH meter"}\n'


def write(name: str, data: bytes):
    def make(tmp_path):
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return make


PUSH_ITEMS = [  # (case, file, what the message must say, where)
    ("latin1", write("synthetic_latin1.jsonl", GOOD.encode() + '{"item_id": "2", "title": "Café scale"}\n'.encode("latin-1")), "not utf-8 text", "line 2"),
    ("binary", write("synthetic_binary.jsonl", bytes(range(255, -1, -1)) * 8), "not utf-8 text", "line 1"),
    ("bad_json", write("synthetic_bad_json.jsonl", GOOD.encode() + b'{"item_id": "2", "title": \n'), "invalid JSON", "line 2"),
    ("no_text_field", write("synthetic_no_text.jsonl", GOOD.encode() + b'{"item_id": "2", "name": "x"}\n'), "no text field", "line 2, field 'title'"),
    ("no_id", write("synthetic_no_id.jsonl", GOOD.encode() + b'{"title": "x"}\n'), "missing item id", "line 2, field 'item_id'"),
    ("empty", write("synthetic_empty.jsonl", b""), "no items in the file", "synthetic_empty.jsonl"),
    ("csv_shifted", write("synthetic_shifted.csv", b"item_id,title\n1,ok\n2,a,b\n"), "expected 2 fields", "line 3"),
    ("truncated_gz", write("synthetic_truncated.jsonl.gz", gzip.compress("".join(GOOD.replace('"1"', f'"{i}"') for i in range(400)).encode())[:300]),
     "truncated or corrupt gzip", "line "),
    ("duplicate_id", write("synthetic_duplicate.jsonl", GOOD.encode() * 2), "duplicate item id '1' (first at line 1)", "line 2, field 'item_id'"),
    ("nested", write("synthetic_nested.jsonl", GOOD.encode() + b'{"item_id": "2", "title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"),
     "nested too deeply", "line 2"),
]


def run_cli(args: list[str]) -> tuple[int, str]:
    r = CliRunner().invoke(app, args)
    return r.exit_code, " ".join(r.output.split())


def assert_clean(code: int, text: str, file: str, message: str, where: str) -> None:
    assert code == 2 and "Traceback" not in text and "Aborted" not in text, text
    assert file in text and message in text and where in text, text


@pytest.mark.parametrize("case,make,message,where", PUSH_ITEMS, ids=[c[0] for c in PUSH_ITEMS])
def test_push_items_files(tmp_path, fake_llm, case, make, message, where):
    src = make(tmp_path)
    code, text = run_cli(["push", "generate", "--items", str(src), "--out", str(tmp_path / "o.parquet"), "--styles", "question", "--n", "2", *fake_llm])
    assert_clean(code, text, src.name, message, where)


def test_push_items_in_another_encoding_read_with_encoding(tmp_path):
    from recsage.pipelines.push import iter_items

    src = PUSH_ITEMS[0][1](tmp_path)
    assert [r["text"] for r in iter_items(src, encoding="latin-1")] == ["Digital pH meter", "Café scale"]


OTHER_FILES = [  # (case, argv with {file} and {tmp}, file, message, where)
    ("style library: bad YAML", ["push", "generate", "--items", "{tmp}/items.jsonl", "--out", "{tmp}/o.parquet", "--styles", "question", "--library", "{file}"],
     write("synthetic_styles.yaml", b"styles: [unclosed\n"), "cannot read style library", "line 1"),
    ("style library: wrong shape", ["push", "generate", "--items", "{tmp}/items.jsonl", "--out", "{tmp}/o.parquet", "--styles", "question", "--library", "{file}"],
     write("synthetic_styles_shape.yaml", b"question: 3\n"), "'styles' mapping", "field 'styles'"),
    ("user list: not an id", ["tagcf", "read-roles", "--data", "{ml}", "--out", "{tmp}/roles", "--users", "{file}"],
     write("synthetic_users.txt", b"1\n2\nthree\n"), "not a user id", "line 3, field 'user_id'"),
    ("user list: latin-1", ["tagcf", "read-roles", "--data", "{ml}", "--out", "{tmp}/roles", "--users", "{file}"],
     write("synthetic_users_latin1.txt", "1\nü\n".encode("latin-1")), "cannot read the user list as UTF-8", "synthetic_users_latin1.txt"),
    ("role list: bad YAML", ["tagcf", "extract", "--data", "{sci}", "--out", "{tmp}/tags", "--roles", "{file}", "--no-extend"],
     write("synthetic_roles.yaml", b"occupation: [a, b\n"), "synthetic_roles.yaml", "line"),
]


@pytest.fixture(scope="module")
def prepared(bundled_data, shared_data, tmp_path_factory):
    from recsage.pipelines import prepare_dataset

    root = tmp_path_factory.mktemp("inputs")
    prepare_dataset("scientific", bundled_data / "scientific-sample", root / "sci")
    prepare_dataset("movielens-100k", shared_data / "movielens-100k", root / "ml")
    return root


@pytest.mark.parametrize("case,argv,make,message,where", OTHER_FILES, ids=[c[0] for c in OTHER_FILES])
def test_other_command_files(tmp_path, fake_llm, prepared, case, argv, make, message, where):
    src = make(tmp_path)
    (tmp_path / "items.jsonl").write_text(GOOD)
    args = [a.format(file=src, tmp=tmp_path, ml=prepared / "ml", sci=prepared / "sci") for a in argv]
    code, text = run_cli([*args, *fake_llm])
    assert_clean(code, text, src.name, message, where)
