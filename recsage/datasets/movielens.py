"""MovieLens loaders (GroupLens research-only terms: load from the user's copy, never bundle)."""

from __future__ import annotations

from pathlib import Path

from recsage.core.errors import InvalidInputError
from recsage.datasets.builders import RawInteraction, index_ids, interactions_table, items_table, users_table
from recsage.datasets.delimited import read_delimited
from recsage.datasets.tables import Dataset
from recsage.datasets.validation import ValidationReport, as_float, as_int, check_unique, require

LICENCE = "GroupLens research-only; redistribution not allowed"

ML1M_OCCUPATIONS = [
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
]
ML1M_AGE_BANDS = {1: "under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}


def age_band(age: int) -> str:
    """The ML-1M buckets, applied to ML-100K's exact ages so both datasets share role names."""
    for lo, name in sorted(ML1M_AGE_BANDS.items(), reverse=True):
        if age >= lo:
            return name
    return ML1M_AGE_BANDS[1]


def _unique_rows(rows: list[tuple[int, list[str]]], file: Path, report: ValidationReport) -> list[tuple[int, list[str]]]:
    keep = check_unique([r[1][0] for r in rows], [f"line {r[0]}" for r in rows], file=str(file), field="id", report=report)
    return [r for r, k in zip(rows, keep) if k]


def load_movielens_100k(path: str | Path, *, report: ValidationReport | None = None, encoding: str | None = None) -> Dataset:
    """`u.data`, `u.item`, `u.user`, `u.genre`. `encoding` applies to every file; by default the
    titles file is read as Latin-1 (as GroupLens ships it) and the rest as UTF-8."""
    folder = Path(path)
    report = report or ValidationReport()
    genres_file = folder / "u.genre"
    genres = [f[0] for _, f in read_delimited(genres_file, "|", 2, report, encoding=encoding or "utf-8")]

    item_file = folder / "u.item"
    item_rows = []
    for lineno, f in _unique_rows(list(read_delimited(item_file, "|", 5 + len(genres), report, encoding=encoding or "latin-1")), item_file, report):
        rec = f"line {lineno}"
        try:
            require(f[1], file=str(item_file), record=rec, field="title")
            flags = [as_int(v, file=str(item_file), record=rec, field=f"genre:{g}") for v, g in zip(f[5:], genres)]
        except InvalidInputError as e:
            report.reject(e)
            continue
        item_rows.append(
            {
                "raw_id": f[0],
                "title": f[1],
                "release_date": f[2],
                "categories": [g for g, v in zip(genres, flags) if v == 1],
            }
        )
    item_map = index_ids(r["raw_id"] for r in item_rows)

    user_file = folder / "u.user"
    attrs = {}
    for lineno, f in _unique_rows(list(read_delimited(user_file, "|", 5, report, encoding=encoding or "utf-8")), user_file, report):
        rec = f"line {lineno}"
        try:
            age = as_int(f[1], file=str(user_file), record=rec, field="age")
            gender = require(f[2], file=str(user_file), record=rec, field="gender")
            occ = require(f[3], file=str(user_file), record=rec, field="occupation")
        except InvalidInputError as e:
            report.reject(e)
            continue
        attrs[f[0]] = {"age": age, "age_band": age_band(age), "gender": gender, "occupation": occ, "zip": f[4]}
    user_map = index_ids(attrs)

    data_file = folder / "u.data"
    rows = []
    for lineno, f in read_delimited(data_file, "\t", 4, report, encoding=encoding or "utf-8"):
        rec = f"line {lineno}"
        try:
            ts = as_int(f[3], file=str(data_file), record=rec, field="timestamp")
            rating = as_float(f[2], file=str(data_file), record=rec, field="rating", lo=1, hi=5)  # MovieLens stars
        except InvalidInputError as e:
            report.reject(e)
            continue
        rows.append(RawInteraction(f[0], f[1], ts, rating, rec))
    inter = interactions_table(rows, item_ids=item_map, user_ids=user_map, file=str(data_file), report=report, ordered=False)
    return Dataset(
        name="movielens-100k",
        items=items_table(item_rows, item_map),
        interactions=inter,
        users=users_table(user_map, attrs),
        meta={"source": str(folder), "loader": "movielens-100k", "timestamp_kind": "unix", "licence": LICENCE,
              "genres": genres, "validation": report.to_dict()},
    )


def load_movielens_1m(path: str | Path, *, report: ValidationReport | None = None, encoding: str | None = None) -> Dataset:
    """Users and movies; ratings too when `ratings.dat` is present (it is not in the shared copy).
    `encoding` as for `load_movielens_100k`."""
    folder = Path(path)
    report = report or ValidationReport()
    movie_file = folder / "movies.dat"
    item_rows = []
    for lineno, f in _unique_rows(list(read_delimited(movie_file, "::", 3, report, encoding=encoding or "latin-1")), movie_file, report):
        try:
            require(f[1], file=str(movie_file), record=f"line {lineno}", field="title")
        except InvalidInputError as e:
            report.reject(e)
            continue
        item_rows.append({"raw_id": f[0], "title": f[1], "categories": [g for g in f[2].split("|") if g]})
    item_map = index_ids(r["raw_id"] for r in item_rows)

    user_file = folder / "users.dat"
    attrs = {}
    for lineno, f in _unique_rows(list(read_delimited(user_file, "::", 5, report, encoding=encoding or "utf-8")), user_file, report):
        rec = f"line {lineno}"
        try:
            age = as_int(f[2], file=str(user_file), record=rec, field="age")
            occ = as_int(f[3], file=str(user_file), record=rec, field="occupation")
            if age not in ML1M_AGE_BANDS:
                raise InvalidInputError(f"unknown age bucket {age}", file=str(user_file), record=rec, field="age")
            if not 0 <= occ < len(ML1M_OCCUPATIONS):
                raise InvalidInputError(f"unknown occupation code {occ}", file=str(user_file), record=rec, field="occupation")
        except InvalidInputError as e:
            report.reject(e)
            continue
        attrs[f[0]] = {"gender": f[1], "age_band": ML1M_AGE_BANDS[age], "occupation_code": occ,
                       "occupation": ML1M_OCCUPATIONS[occ], "zip": f[4]}
    user_map = index_ids(attrs)

    inter = None
    ratings_file = folder / "ratings.dat"
    if ratings_file.exists():
        rows = []
        for lineno, f in read_delimited(ratings_file, "::", 4, report, encoding=encoding or "utf-8"):
            rec = f"line {lineno}"
            try:
                rows.append(RawInteraction(f[0], f[1], as_int(f[3], file=str(ratings_file), record=rec, field="timestamp"),
                                           as_float(f[2], file=str(ratings_file), record=rec, field="rating", lo=1, hi=5), rec))
            except InvalidInputError as e:
                report.reject(e)
        inter = interactions_table(rows, item_ids=item_map, user_ids=user_map, file=str(ratings_file), report=report, ordered=False)
    return Dataset(
        name="movielens-1m",
        items=items_table(item_rows, item_map),
        interactions=inter,
        users=users_table(user_map, attrs),
        meta={"source": str(folder), "loader": "movielens-1m", "timestamp_kind": "unix", "licence": LICENCE,
              "has_ratings": inter is not None, "validation": report.to_dict()},
    )
