"""Each class of bad input gives an error naming file, record and field, or is counted with --skip-bad.

All files here are small synthetic fixtures written by the tests (named synthetic_*)."""

import json

import pytest

from recsage.core.errors import InvalidInputError
from recsage.datasets import ColumnMapping, ValidationReport, load_amazon_loo, load_generic, load_movielens_100k, load_upworthy


def write(path, text):
    path.write_text(text)
    return path


def test_malformed_row_names_file_and_line(tmp_path):
    f = write(tmp_path / "synthetic_log.csv", "user_id,item_id,timestamp\nu1,i1,1\nu1,i2,2,EXTRA\n")
    with pytest.raises(InvalidInputError) as e:
        load_generic(f)
    assert "synthetic_log.csv" in str(e.value)


def test_malformed_delimited_row(tmp_path, shared_data):
    import shutil

    d = tmp_path / "ml"
    shutil.copytree(shared_data / "movielens-100k", d)
    with open(d / "u.data", "a") as fh:
        fh.write("1\t2\t3\n")  # 3 fields
    with pytest.raises(InvalidInputError) as e:
        load_movielens_100k(d)
    assert e.value.file.endswith("u.data") and e.value.record == "line 100001"
    report = ValidationReport(skip_bad=True)
    ds = load_movielens_100k(d, report=report)
    assert report.n_skipped == 1 and len(ds.interactions) == 100000


def test_missing_required_field(tmp_path):
    f = write(tmp_path / "synthetic_log.csv", "user_id,item_id,timestamp\nu1,i1,1\n,i2,2\n")
    with pytest.raises(InvalidInputError) as e:
        load_generic(f)
    assert (e.value.record, e.value.field) == ("line 3", "user_id")


def test_missing_column(tmp_path):
    f = write(tmp_path / "synthetic_log.csv", "user,item_id\nu1,i1\n")
    with pytest.raises(InvalidInputError, match="missing column"):
        load_generic(f)


def test_non_numeric_timestamp(tmp_path):
    f = write(tmp_path / "synthetic_log.jsonl", '{"user_id": "u1", "item_id": "i1", "timestamp": "yesterday"}\n')
    with pytest.raises(InvalidInputError) as e:
        load_generic(f)
    assert (e.value.record, e.value.field) == ("line 1", "timestamp")


def test_invalid_json_line(tmp_path):
    f = write(tmp_path / "synthetic_log.jsonl", '{"user_id": "u1", "item_id": "i1", "timestamp": 1}\n{oops\n')
    with pytest.raises(InvalidInputError) as e:
        load_generic(f)
    assert e.value.record == "line 2"


def test_duplicate_item_ids(tmp_path):
    log = write(tmp_path / "synthetic_log.csv", "user_id,item_id,timestamp\nu1,i1,1\n")
    items = write(tmp_path / "synthetic_items.csv", "item_id,title\ni1,First\ni1,Again\n")
    with pytest.raises(InvalidInputError) as e:
        load_generic(log, items)
    assert "duplicate id 'i1'" in str(e.value) and e.value.record == "line 3"


def test_unknown_item_reference(tmp_path):
    log = write(tmp_path / "synthetic_log.csv", "user_id,item_id,timestamp\nu1,i1,1\nu1,i9,2\n")
    items = write(tmp_path / "synthetic_items.csv", "item_id,title\ni1,First\n")
    with pytest.raises(InvalidInputError) as e:
        load_generic(log, items)
    assert "unknown item 'i9'" in str(e.value) and e.value.record == "line 3" and e.value.field == "item"
    report = ValidationReport(skip_bad=True)
    ds = load_generic(log, items, report=report)
    assert report.n_skipped == 1 and len(ds.interactions) == 1


def test_unknown_item_in_amazon_sequences(tmp_path):
    d = tmp_path / "synthetic_amazon"
    d.mkdir()
    write(d / "X.inter.json", json.dumps({"0": [0, 1], "1": [1, 7]}))
    write(d / "X.item.json", json.dumps({"0": {"title": "a"}, "1": {"title": "b"}}))
    with pytest.raises(InvalidInputError) as e:
        load_amazon_loo(d)
    assert e.value.record == "user 1[1]" and "unknown item '7'" in str(e.value)


def test_non_monotonic_timestamps_when_file_order_is_the_sequence(tmp_path):
    f = write(tmp_path / "synthetic_log.csv", "user_id,item_id,timestamp\nu1,i1,10\nu1,i2,5\n")
    with pytest.raises(InvalidInputError) as e:
        load_generic(f, order="file")
    assert e.value.field == "timestamp" and e.value.record == "line 3"
    # default order sorts by time instead
    ds = load_generic(f)
    assert ds.sequences()[0].tolist() == [1, 0]


def test_upworthy_bad_counts(tmp_path):
    f = write(
        tmp_path / "synthetic_upworthy.csv",
        "clickability_test_id,headline,impressions,clicks\nt1,A,100,5\nt1,B,100,500\nt1,,100,1\n",
    )
    with pytest.raises(InvalidInputError) as e:
        load_upworthy(f)
    assert e.value.field == "headline" and e.value.record == "line 4"
    report = ValidationReport(skip_bad=True)
    ds = load_upworthy(f, report=report)
    assert len(ds.experiments) == 1 and report.n_skipped == 2
    assert set(report.reasons) == {"missing required value", "clicks exceed impressions"}


def test_bad_sid_token(tmp_path):
    d = tmp_path / "synthetic_amazon"
    d.mkdir()
    write(d / "X.inter.json", json.dumps({"0": [0, 1]}))
    write(d / "X.index.json", json.dumps({"0": ["<a_1>", "<b_2>"], "1": ["<a_1>", "<x_2>"]}))
    with pytest.raises(InvalidInputError) as e:
        load_amazon_loo(d)
    assert e.value.record == "1" and e.value.field == "sid[1]"


def test_column_mapping_parse():
    m = ColumnMapping.parse("user=uid,item=sku,timestamp=ts")
    assert (m.user, m.item, m.timestamp) == ("uid", "sku", "ts")
    with pytest.raises(InvalidInputError, match="unknown field"):
        ColumnMapping.parse("usr=uid")


def test_missing_file():
    with pytest.raises(InvalidInputError, match="file not found"):
        load_generic("/nonexistent/synthetic.csv")
