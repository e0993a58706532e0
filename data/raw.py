"""The raw-reader contract: what a source declares (``Source``), what its reader yields
(``Chunk`` of raw columns, ``Problem`` rows), ``DataError``, and the parsing of raw labels
and numbers that every reader shares.

A source declares its files, its fields (``FieldSpec``), its label column and a ``read()``
that yields ``Chunk``s: frames of raw columns whose index is the 1-based line (or row)
number of each record in its file. ``data.pipeline`` turns those chunks into a ``Dataset``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .encoding import FieldSpec

_LABEL_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1, "no": 0, "yes": 1}


class DataError(ValueError):
    """Raw data that cannot be loaded: the message names the file, the row and the problem."""


@dataclass
class Problem:
    """Rows that cannot be used, all for one reason; ``detail`` describes the first of them."""

    file: Path
    unit: str
    reason: str
    positions: np.ndarray
    detail: str

    def message(self, dataset: str) -> str:
        return f"{dataset}: {self.file}, {self.unit} {int(self.positions[0])}: {self.reason}: {self.detail}"


@dataclass
class Chunk:
    """Raw rows (index: 1-based line / row numbers in ``file``) and the problems found so far.

    The split hashes ``index - header_lines``, the data row number, so that a table gives the
    same split as CSV (after its header line) and as Parquet.
    """

    frame: pd.DataFrame
    file: Path
    unit: str
    problems: list[Problem] = field(default_factory=list)
    header_lines: int = 0

    def problem(self, reason: str, mask: np.ndarray, describe: Callable[[int], str]) -> None:
        """Record the rows of ``frame`` under ``mask``; ``describe(i)`` explains row ``i``."""
        if mask.any():
            first = int(np.flatnonzero(mask)[0])
            self.problems.append(Problem(self.file, self.unit, reason, self.frame.index[mask].to_numpy(),
                                         describe(first)))


@dataclass
class Source:
    """What a raw data set declares; ``read()`` is called once per pass.

    ``truth``, when set, is a ``.npy`` file of the true click probability of every data row
    (entry ``i`` for data row ``i + 1``), as ``data.generate`` writes beside its files.
    """

    dataset: str
    files: dict[str, Path]
    fields: list[FieldSpec]
    label: str
    read: Callable[[], Iterator[Chunk]]
    description: str
    label_rule: str
    truth: Path | None = None


def truth_beside(file: Path) -> Path | None:
    """``<file>.prob.npy`` if it exists: the true probabilities written by ``data.generate``."""
    side = file.with_name(file.name + ".prob.npy")
    return side if side.is_file() else None


def resolve_file(path, env_var: str, dataset: str) -> Path:
    """``path`` or ``$env_var``, which must name an existing file."""
    path = path or os.environ.get(env_var)
    if not path:
        raise DataError(f"{dataset}: no file given; pass path=... or set the environment variable {env_var}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{dataset}: file not found: {path}")
    return path


def parse_numbers(chunk: Chunk, columns) -> None:
    """Replace ``columns`` of ``chunk.frame`` by floats (NaN = missing); record unparsable ones."""
    parsed = {}
    for column in columns:
        raw = chunk.frame[column]
        if pd.api.types.is_float_dtype(raw.dtype):
            continue
        values = _arrow_floats(raw)
        if values is None:
            values = _floats(raw)
            unparsable = (values.isna() & raw.notna() & (raw.astype(str) != "")).to_numpy()
            chunk.problem(f"unparsable number in column {column!r}", unparsable,
                          lambda i, raw=raw: f"value {raw.iloc[i]!r} is not a number")
        parsed[column] = values
    chunk.frame = chunk.frame.assign(**parsed)


def _arrow_floats(raw: pd.Series) -> pd.Series | None:
    """A text column cast by arrow in one pass (empty = NaN); None if it is not arrow text or a
    value does not parse (the slower path then finds which)."""
    if not (isinstance(raw.dtype, pd.StringDtype) and raw.dtype.storage == "pyarrow"):
        return None
    text = pa.array(raw.array)
    try:
        values = pc.cast(pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text), pa.float64())
    except pa.ArrowInvalid:
        return None
    return pd.Series(values.to_numpy(zero_copy_only=False), index=raw.index)


def _floats(raw: pd.Series) -> pd.Series:
    """``raw`` as float64 (NaN where missing or unparsable); a direct cast first, as it is faster."""
    try:
        return raw.replace("", None).astype(np.float64)
    except (ValueError, TypeError):
        return pd.to_numeric(raw, errors="coerce").astype(np.float64)


def binary_labels(column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels as float32 0/1, with masks of the missing and of the unmappable values.

    Accepted (case and surrounding spaces ignored): 0/1 (also 0.0/1.0), booleans,
    ``true``/``false`` and ``yes``/``no``. Unusable entries are NaN in the returned labels.
    """
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    text = pd.Series(np.asarray(pd.Index(uniques).astype(str), dtype=object)).str.strip().str.lower()
    mapped = np.append(text.map(_LABEL_VALUES).to_numpy(np.float64, na_value=np.nan), np.nan)[codes]
    missing = np.append(text.to_numpy() == "", True)[codes]
    unmappable = np.isnan(mapped) & ~missing
    return mapped.astype(np.float32), missing, unmappable
