"""Avazu click-through prediction (Kaggle ``train.csv``): ``data.load("avazu", path=...)``.

CSV with a header: ``click`` is the label, ``id`` is dropped, ``hour`` (``YYMMDDHH``) becomes
``hour_of_day`` and ``weekday`` (0 = Monday), every other column is categorical. Read in
blocks; ``rows`` keeps the first rows. Seeded random 8:1:1 split (per-line hash).
A ``<file>.prob.npy`` beside the file (``python -m data.generate``) gives each row's true
probability (``Split.prob``, the oracle).
"""

from __future__ import annotations

import pandas as pd

from ..encoding import FieldSpec
from ..pipeline import LoadOptions, load_source
from ..raw import DataError, Source, resolve_file, truth_beside
from ..registry import register
from ..schema import Dataset
from .text import read_blocks, read_header

DROPPED = ("id", "click", "hour")


@register("avazu", LoadOptions)
def avazu(options: LoadOptions) -> Dataset:
    """Avazu from ``path`` (or ``$CTRBENCH_AVAZU``); ``min_count=2`` as in BARS avazu_x4."""
    file = resolve_file(options.path, "CTRBENCH_AVAZU", "avazu")
    columns = read_header(file, sep=",")
    absent = [c for c in ("click", "hour") if c not in columns]
    if absent:
        raise DataError(f"avazu: {file}: no column(s) {absent} in the header; the file has {columns}")
    kept = [c for c in columns if c not in DROPPED]

    def read():
        for chunk in read_blocks(file, columns=columns, sep=",", header=True, rows=options.rows):
            hour = chunk.frame["hour"]
            stamp = pd.to_datetime(hour, format="%y%m%d%H", errors="coerce")
            chunk.problem("unparsable hour", (stamp.isna() & (hour != "")).to_numpy(),
                          lambda i, hour=hour: f"value {hour.iloc[i]!r}; expected YYMMDDHH")
            chunk.frame = chunk.frame[[*kept, "click"]].assign(
                hour_of_day=stamp.dt.hour.astype("Int64"), weekday=stamp.dt.day_of_week.astype("Int64"))
            yield chunk

    fields = [FieldSpec(c) for c in [*kept, "hour_of_day", "weekday"]]
    source = Source("avazu", {file.name: file}, fields, "click", read, f"Avazu Kaggle CSV ({file})",
                    "column 'click' (1 = click)", truth_beside(file))
    return load_source(source, options)
