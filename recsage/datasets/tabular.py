"""Reading CSV / JSONL / Parquet into DataFrames, with the file named in every error."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from recsage.core.errors import InvalidInputError


ENCODING_HINT = "pass the file's encoding, e.g. --encoding latin-1"


def check_encoding(encoding: str) -> str:
    try:
        "".encode(encoding)
    except LookupError:
        raise InvalidInputError(f"unknown encoding {encoding!r}", field="encoding") from None
    return encoding


def is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def decode_text(data: bytes, path: Path, encoding: str = "utf-8") -> str:
    """A whole file's bytes as text (a UTF-8 BOM skipped); bytes that are not `encoding` are an
    error naming the file, the line and the encoding that was expected."""
    check_encoding(encoding)
    try:
        return data.decode("utf-8-sig" if is_utf8(encoding) else encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InvalidInputError(f"not {encoding} text ({e.reason} at byte {e.start}); {ENCODING_HINT}", file=str(path), record=f"line {line}") from None


def read_table(path: str | Path, encoding: str = "utf-8", **csv_kwargs) -> pd.DataFrame:
    """A CSV/TSV/JSONL/Parquet table (optionally gzipped); text files are read as `encoding`."""
    path = Path(path)
    check_encoding(encoding)
    if not path.exists():
        raise InvalidInputError("file not found", file=str(path))
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            return pd.read_parquet(path)
        if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
            return _read_jsonl(path, encoding)
        if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
            sep = "\t" if ".tsv" in name else ","
            return pd.read_csv(path, sep=sep, encoding=encoding, **{"keep_default_na": False, "na_values": [""], **csv_kwargs})
    except InvalidInputError:
        raise
    except pd.errors.ParserError as e:
        raise InvalidInputError(f"malformed CSV: {e}", file=str(path)) from None
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"not {encoding} text ({e.reason} at byte {e.start} of a chunk); {ENCODING_HINT}", file=str(path)) from None
    except (EOFError, zlib.error) as e:  # a truncated .gz: click would print only "Aborted."
        raise InvalidInputError(f"truncated or corrupt gzip ({e})", file=str(path)) from None
    except (OSError, ValueError) as e:
        raise InvalidInputError(f"cannot read: {e}", file=str(path)) from None
    raise InvalidInputError("unsupported format (use .csv, .tsv, .jsonl or .parquet, optionally .gz)", file=str(path))


MAX_LINE_BYTES = 16 * 2**20  # one record; a longer line is a broken file (or not a line-based file at all)


def text_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """(line number, line) of a text file in `encoding`, gzipped or not, a leading UTF-8 BOM skipped.
    Bytes that are not `encoding` and a truncated or corrupt .gz become an error naming the file and
    the line (lines are decoded one by one, so the line number is exact)."""
    import gzip

    check_encoding(encoding)
    opener = gzip.open if path.suffix == ".gz" else open
    lineno = 0
    try:
        with opener(path, "rb") as f:
            while raw := f.readline(MAX_LINE_BYTES + 1):  # bounded: a file without newlines is never read whole
                lineno += 1
                if len(raw) > MAX_LINE_BYTES:
                    raise InvalidInputError(f"a line longer than {MAX_LINE_BYTES // 2**20} MiB: not a record", file=str(path), record=f"line {lineno}")
                try:
                    yield lineno, raw.decode("utf-8-sig" if lineno == 1 and is_utf8(encoding) else encoding)
                except UnicodeDecodeError as e:
                    raise InvalidInputError(f"not {encoding} text ({e.reason} at byte {e.start} of the line); {ENCODING_HINT}",
                                            file=str(path), record=f"line {lineno}") from None
    except FileNotFoundError:
        raise InvalidInputError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise InvalidInputError("a folder, not a file: pass the data file inside it", file=str(path)) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise InvalidInputError(f"truncated or corrupt gzip after {lineno} complete lines ({e})", file=str(path), record=f"line {lineno + 1}") from None


def iter_jsonl(path: Path, encoding: str = "utf-8"):
    """(line number, object) for each non-blank line; a bad line is an error naming file and line."""
    for lineno, line in text_lines(path, encoding):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"invalid JSON ({e.msg})", file=str(path), record=f"line {lineno}") from None
        except RecursionError:
            raise InvalidInputError("JSON nested too deeply", file=str(path), record=f"line {lineno}") from None
        if not isinstance(obj, dict):
            raise InvalidInputError("expected a JSON object", file=str(path), record=f"line {lineno}")
        yield lineno, obj


def _read_jsonl(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    rows = [{**obj, "__line__": lineno} for lineno, obj in iter_jsonl(path, encoding)]
    return pd.DataFrame(rows)


def record_label(df: pd.DataFrame, pos: int, header_lines: int = 1) -> str:
    """Human label of a row: JSONL line number when known, else the CSV line (header = line 1)."""
    if "__line__" in df.columns:
        return f"line {int(df['__line__'].iat[pos])}"
    return f"line {pos + 1 + header_lines}"


def require_columns(df: pd.DataFrame, columns: list[str], *, file: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidInputError(
            f"missing column(s) {missing}; found {[c for c in df.columns if c != '__line__']}", file=file, field=missing[0]
        )
