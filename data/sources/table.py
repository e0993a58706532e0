"""Your own table: ``data.load("table", path=..., label=..., categorical=[...], numeric=[...])``.

CSV (any ``sep``, standard double-quote quoting, header line required) or Parquet (chosen by
the ``.parquet`` / ``.pq`` suffix). The label column must hold 0/1, booleans, true/false or
yes/no (case-insensitive); ``categorical`` columns get vocabularies; ``numeric`` columns get
quantile bins fitted on the training split or are kept as values, per column
(``numeric_as``, ``scaling``: ``data.numeric_options``). ``rows`` keeps the first rows. Seeded random
split by the line (CSV) or row (Parquet) number of each record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..encoding import FieldSpec
from ..numeric_options import NumericOptions
from ..pipeline import load_source
from ..raw import Chunk, DataError, Source, resolve_file
from ..registry import register
from ..schema import Dataset
from .text import read_blocks, read_header

PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_BATCH_ROWS = 1 << 16


@dataclass(frozen=True)
class TableOptions(NumericOptions):
    """``NumericOptions`` and the table's columns: the 0/1 ``label``, the ``categorical`` and
    ``numeric`` feature columns, and the CSV separator ``sep``."""

    label: str = "label"
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    sep: str = ","


@register("table", TableOptions)
def table(options: TableOptions) -> Dataset:
    """A CSV or Parquet table: 0/1 ``label``; fields: the ``categorical`` columns, then the ``numeric``."""
    label, sep = options.label, options.sep
    categorical, numeric = list(options.categorical), list(options.numeric)
    if not categorical + numeric:
        raise ValueError("table: no feature columns; pass categorical=[...] and/or numeric=[...]")
    wanted = [label, *categorical, *numeric]
    if len(set(wanted)) < len(wanted):
        raise ValueError(f"table: every column may appear once among label, categorical and numeric; "
                         f"got label={label!r}, categorical={categorical}, numeric={numeric}")
    fields = [FieldSpec(c) for c in categorical] + options.specs("table", numeric)
    file = resolve_file(options.path, "CTRBENCH_TABLE", "table")
    parquet = any(s in PARQUET_SUFFIXES for s in file.suffixes)
    columns = _parquet_columns(file) if parquet else read_header(file, sep=sep)
    absent = [c for c in wanted if c not in columns]
    if absent:
        raise DataError(f"table: {file}: no column(s) {absent}; the file has columns {columns}")
    duplicated = sorted({c for c in wanted if columns.count(c) > 1})
    if duplicated:
        raise DataError(f"table: {file}: column name(s) {duplicated} appear more than once in the header")

    def read():
        if parquet:
            yield from parquet_chunks(file, wanted, options.rows)
            return
        for chunk in read_blocks(file, columns=columns, sep=sep, header=True, quoted=True,
                                 rows=options.rows, numbers=tuple(numeric)):
            chunk.frame = chunk.frame[wanted]
            yield chunk

    source = Source("table", {file.name: file}, fields, label, read, f"table {file}", f"column {label!r}")
    return load_source(source, options)


def _parquet_file(file: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(file)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"table: {file}: not a readable Parquet file: {err}") from err


def _parquet_columns(file: Path) -> list[str]:
    return list(_parquet_file(file).schema_arrow.names)


def parquet_chunks(file: Path, columns: list[str], rows: int | None) -> Iterator[Chunk]:
    first_row = 1
    for batch in _parquet_file(file).iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=columns):
        frame = batch.to_pandas()
        if rows is not None:
            frame = frame.iloc[: rows - first_row + 1]
        frame.index = pd.RangeIndex(first_row, first_row + len(frame), name="row")
        first_row += len(frame)
        yield Chunk(frame, file, "row")
        if rows is not None and first_row > rows:
            return
