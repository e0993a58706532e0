"""Avazu click-through prediction (Kaggle ``train.csv``): ``data.load("avazu", path=...)``.

CSV with a header: ``click`` is the label, ``id`` is dropped, ``hour`` (``YYMMDDHH``) becomes
``hour_of_day`` and ``weekday`` (0 = Monday), every other column is categorical. Read in
blocks; ``max_rows`` keeps the first rows. Seeded random 8:1:1 split (per-line hash).
"""

from __future__ import annotations

import pandas as pd

from ..encoding import DataError, FieldSpec
from ..registry import register
from ..schema import Dataset
from .base import Source, load_source, resolve_file
from .text import read_blocks, read_header

DROPPED = ("id", "click", "hour")


@register("avazu")
def avazu(
    path: str | None = None,
    min_count: int = 2,
    hash_buckets: int | None = None,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    on_bad_rows: str = "error",
    max_rows: int | None = None,
) -> Dataset:
    """Avazu from ``path`` (or ``$CTRBENCH_AVAZU``); ``min_count=2`` as in BARS avazu_x4."""
    file = resolve_file(path, "CTRBENCH_AVAZU", "avazu")
    columns = read_header(file, sep=",")
    absent = [c for c in ("click", "hour") if c not in columns]
    if absent:
        raise DataError(f"avazu: {file}: no column(s) {absent} in the header; the file has {columns}")
    kept = [c for c in columns if c not in DROPPED]

    def read():
        for chunk in read_blocks(file, columns=columns, sep=",", header=True, max_records=max_rows):
            hour = chunk.frame["hour"]
            stamp = pd.to_datetime(hour, format="%y%m%d%H", errors="coerce")
            chunk.problem("unparsable hour", (stamp.isna() & (hour != "")).to_numpy(),
                          lambda i, hour=hour: f"value {hour.iloc[i]!r}; expected YYMMDDHH")
            chunk.frame = chunk.frame[[*kept, "click"]].assign(
                hour_of_day=stamp.dt.hour.astype("Int64"), weekday=stamp.dt.day_of_week.astype("Int64"))
            yield chunk

    fields = [FieldSpec(c) for c in [*kept, "hour_of_day", "weekday"]]
    source = Source("avazu", {file.name: file}, fields, "click", read, f"Avazu Kaggle CSV ({file})",
                    "column 'click' (1 = click)")
    return load_source(source, {"min_count": min_count, "hash_buckets": hash_buckets, "split": split,
                                "seed": seed, "on_bad_rows": on_bad_rows, "max_rows": max_rows})
