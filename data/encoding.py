"""The one encoding pipeline shared by every real data source.

Every field owns local indices ``0 .. vocab_size - 1``:

* ``0`` (``OOV``): out of vocabulary: a value seen fewer than ``min_count`` times in the
  training split, or never seen there;
* ``1`` (``MISSING``): the value is missing (NaN / None / empty string), kept apart from OOV;
* ``2 ..``: the kept training values, most frequent first (ties broken by key).

Field kinds (``FieldSpec.kind``):

* ``"categorical"``: any raw value, compared by its string form (hashed to a 64-bit key);
  with ``hash_buckets=B``, a field whose kept training vocabulary would exceed ``B`` values
  is hashed into ``B`` buckets instead (``2 + key % B``; nothing is OOV there);
* ``"log_bucket"``: numbers bucketed by the Kaggle Criteo winners' rule,
  ``floor(ln(x) ** 2)`` for ``x > 2`` and the value itself otherwise; the resulting
  categories then follow the categorical rules. Unlike FuxiCTR's ``convert_to_bucket``,
  bucket ``k`` and the raw value ``k`` stay different categories;
* ``"quantile"``: numbers cut into at most ``num_bins`` bins (``FieldSpec.num_bins``, else the
  encoder's) at quantiles of the training values (duplicate edges merged); values beyond the
  training range fall in the end bins;
* ``"value"``: a number kept as a value (``data.numeric``): a ``numeric`` field whose local
  index ``NUMBER`` (0) carries the number normalised by ``FieldSpec.scaling`` (fitted on the
  training rows, clipped) and whose local index ``NUMBER_MISSING`` (1) marks a missing number,
  with value 1.0 (not 0, which would zero the missing slot's vector: see ``data.numeric``).
  ``encode`` gives the indices and the values (1.0 for every other kind).

``log_bucket`` and ``quantile`` fields are ``bucketed`` fields of the schema, ``value`` fields
``numeric`` ones, the rest ``categorical``. A categorical field with a ``value_column`` carries
that raw column's number as its value (libFFM's ``field:index:value``; 1.0 where missing):
a ``valued`` field of the schema.

Fitting sees only training rows (``partial_fit`` per chunk, then ``finish_fit``), so a data
set of any length is counted in one streaming pass. Train/val/test membership is a seeded
hash of each record's id (``data.splits``), independent of chunking and of other rows.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather

from .numeric import CLIP, NumberStats, Scaler, check_scaling
from .schema import Field

OOV, MISSING, FIRST_VALUE = 0, 1, 2
KINDS = ("categorical", "log_bucket", "quantile", "value")
SCHEMA_KINDS = {"categorical": "categorical", "log_bucket": "bucketed", "quantile": "bucketed", "value": "numeric"}
_LOG_BUCKET_TAG = np.uint64(0x9E3779B97F4A7C15)
VALUE_COLUMN = "{}\0value"  # a prepared chunk's numbers of a field's value_column
_POOL = ThreadPoolExecutor(os.cpu_count() or 1)  # per-field work: arrow and numpy release the GIL


@dataclass(frozen=True)
class FieldSpec:
    """One raw column and how it becomes a field: ``kind`` is one of ``KINDS``; a ``quantile``
    field may set its own ``num_bins``, a ``value`` field its ``scaling`` (``data.numeric``)."""

    name: str
    kind: str = "categorical"
    num_bins: int | None = None
    scaling: str = "standardize"
    value_column: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        check_scaling(self.scaling, f"field {self.name!r}")
        if self.num_bins is not None and (not isinstance(self.num_bins, int) or self.num_bins < 2):
            raise ValueError(f"field {self.name!r}: num_bins must be None or an integer >= 2, got {self.num_bins!r}")
        if self.value_column is not None and self.kind != "categorical":
            raise ValueError(f"field {self.name!r}: only a categorical field takes a value_column, got kind "
                             f"{self.kind!r}")

    @property
    def numeric(self) -> bool:
        """Whether the raw column holds numbers (every kind but ``categorical``)."""
        return self.kind != "categorical"

    @property
    def valued(self) -> bool:
        """Whether the field carries a value per row (a ``value`` field, or one with a ``value_column``)."""
        return self.kind == "value" or self.value_column is not None

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "num_bins": self.num_bins, "scaling": self.scaling,
                "value_column": self.value_column}


class Encoder:
    """Vocabularies and bin edges fitted on training rows; maps raw frames to local indices."""

    def __init__(self, specs, *, min_count: int = 1, num_bins: int = 10, hash_buckets: int | None = None):
        self.specs = tuple(specs)
        self.min_count = min_count
        self.num_bins = num_bins
        self.hash_buckets = hash_buckets
        self.vocab: dict[str, np.ndarray] = {}
        self.edges: dict[str, np.ndarray] = {}
        self.hashed: dict[str, int] = {}
        self.scalers: dict[str, Scaler] = {}
        self._counts = {s.name: _Counts() for s in self.specs if s.kind in ("categorical", "log_bucket")}
        self._samples: dict[str, list[np.ndarray]] = {s.name: [] for s in self.specs if s.kind == "quantile"}
        self._stats = {s.name: NumberStats(s.scaling) for s in self.specs if s.kind == "value"}
        self._values: dict[str, pa.Array] = {}

    def prepare(self, frame: pd.DataFrame) -> pa.Table:
        """What fitting and encoding need of the rows of ``frame``, one column per field, built
        in parallel threads: a ``categorical`` or ``log_bucket`` field as a dictionary array (its
        distinct values once, a code per row, null where missing), a ``quantile`` or ``value``
        field as its numbers (float64, NaN where missing), and a ``value_column`` as numbers under
        ``VALUE_COLUMN.format(field)``. Far smaller than the raw text, and encoding it again
        needs no parsing: ``data.pipeline`` keeps it between its two passes."""

        def field(spec: FieldSpec) -> list[tuple[str, pa.Array]]:
            column = frame[spec.name]
            prepared = pa.array(_numbers(column)) if spec.kind in ("quantile", "value") else pc.dictionary_encode(
                _values(spec, column))
            extra = ([(VALUE_COLUMN.format(spec.name), pa.array(_numbers(frame[spec.value_column])))]
                     if spec.value_column is not None else [])
            return [(spec.name, prepared), *extra]

        columns = [c for pairs in _POOL.map(field, self.specs) for c in pairs]
        return pa.table(dict(columns))

    def partial_fit(self, frame: pd.DataFrame) -> None:
        """Count the values of training rows ``frame`` (call once per chunk)."""
        self.fit_prepared(self.prepare(frame))

    def fit_prepared(self, prepared: pa.Table, rows: np.ndarray | None = None) -> None:
        """Count the training rows of a ``prepare``d chunk: all, or those where the boolean
        ``rows`` is true. Fields are counted in parallel threads."""
        list(_POOL.map(lambda spec: self._fit_field(spec, _column(prepared, spec.name), rows), self.specs))

    def _fit_field(self, spec: FieldSpec, column: pa.Array, rows: np.ndarray | None) -> None:
        if spec.kind in ("quantile", "value"):
            values = column.to_numpy()
            values = values if rows is None else values[rows]
            if spec.kind == "value":
                self._stats[spec.name].add(values)
            else:
                self._samples[spec.name].append(values[~np.isnan(values)])
            return
        codes = _codes(column)
        counts = np.bincount(codes if rows is None else codes[rows], minlength=len(column.dictionary) + 1)[:-1]
        seen = counts > 0
        self._counts[spec.name].add(column.dictionary.filter(pa.array(seen)), counts[seen])

    def finish_fit(self) -> Encoder:
        """Turn the counts into vocabularies (``min_count``, hashing) and bin edges."""
        for spec in self.specs:
            if spec.kind == "quantile":
                values = np.concatenate(self._samples.pop(spec.name))
                quantiles = np.linspace(0, 1, self._bins(spec) + 1)[1:-1]
                edges = np.quantile(values, quantiles) if len(values) else np.empty(0)
                self.edges[spec.name] = np.unique(edges)
                continue
            if spec.kind == "value":
                self.scalers[spec.name] = self._stats.pop(spec.name).finish()
                continue
            values, counts = self._counts.pop(spec.name).totals()
            kept = np.flatnonzero(counts >= self.min_count)
            if self.hash_buckets is not None and len(kept) > self.hash_buckets:
                self.hashed[spec.name] = self.hash_buckets
            else:
                values = values.take(kept)
                keys = _keys(spec, values)
                order = np.lexsort((keys, -counts[kept]))
                self.vocab[spec.name] = keys[order]
                self._values[spec.name] = values.take(order)
        return self

    def fit(self, frame: pd.DataFrame) -> Encoder:
        """Fit on one in-memory frame of training rows."""
        self.partial_fit(frame)
        return self.finish_fit()

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Local indices ``[len(frame), num_fields]`` (int64) of the rows of ``frame``."""
        return self.encode(frame)[0]

    def encode(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(local, values, clipped)`` of the rows of ``frame``: local indices ``[n, F]`` int64 and,
        when some field is ``valued`` (else None), the values ``[n, F]`` float32 (the normalised
        numbers of ``value`` fields, the raw ``value_column`` of the others that have one; 1.0 where
        missing and in every other field) and which numbers were clipped ``[n, F]`` bool."""
        return self.encode_prepared(self.prepare(frame))

    def encode_prepared(self, prepared: pa.Table) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``encode`` of a ``prepare``d chunk; fields are encoded in parallel threads."""
        local = np.empty((prepared.num_rows, len(self.specs)), dtype=np.int64)
        values = np.ones(local.shape, dtype=np.float32) if self.has_values else None
        clipped = np.zeros(local.shape, dtype=bool) if self.has_values else None

        def field(f: int) -> None:
            spec = self.specs[f]
            column = _column(prepared, spec.name)
            if spec.kind == "value":
                local[:, f], values[:, f], clipped[:, f] = self.scalers[spec.name].encode(column.to_numpy())
                return
            local[:, f] = self._transform_field(spec, column)
            if spec.value_column is not None:
                numbers = _column(prepared, VALUE_COLUMN.format(spec.name)).to_numpy()
                values[:, f] = np.nan_to_num(numbers, nan=1.0)

        list(_POOL.map(field, range(len(self.specs))))
        return local, values, clipped

    @property
    def has_values(self) -> bool:
        return any(s.valued for s in self.specs)

    def _bins(self, spec: FieldSpec) -> int:
        return spec.num_bins or self.num_bins

    @property
    def vocab_sizes(self) -> dict[str, int]:
        """Local indices per field, the OOV and missing slots included."""
        sizes = {}
        for spec in self.specs:
            if spec.kind == "quantile":
                sizes[spec.name] = FIRST_VALUE + len(self.edges[spec.name]) + 1
            elif spec.kind == "value":
                sizes[spec.name] = 2
            elif spec.name in self.hashed:
                sizes[spec.name] = FIRST_VALUE + self.hashed[spec.name]
            else:
                sizes[spec.name] = FIRST_VALUE + len(self.vocab[spec.name])
        return sizes

    def fields(self) -> list[Field]:
        sizes = self.vocab_sizes
        return [Field(s.name, sizes[s.name], oov=s.kind != "value", kind=SCHEMA_KINDS[s.kind], valued=s.valued)
                for s in self.specs]

    def rules(self) -> dict[str, str]:
        """One line per field saying how its raw values were encoded."""
        rules = {}
        for spec in self.specs:
            if spec.kind == "quantile":
                rules[spec.name] = f"quantile bins fitted on train (num_bins={self._bins(spec)})"
            elif spec.kind == "value":
                rules[spec.name] = (f"value: {spec.scaling} fitted on train, clipped to {list(CLIP[spec.scaling])}; "
                                    "missing -> its own index with value 1")
            elif spec.name in self.hashed:
                rules[spec.name] = f"hashed into {self.hashed[spec.name]} buckets"
            else:
                prefix = "log bucket floor(ln(x)^2) for x > 2, else x; " if spec.kind == "log_bucket" else ""
                rules[spec.name] = f"{prefix}vocabulary of train values seen >= {self.min_count} times"
        return rules

    def save(self, directory: Path) -> None:
        """Write ``encoder.json``, ``encoder.npz`` and ``vocabulary.arrow`` into ``directory``."""
        meta = {
            "min_count": self.min_count, "num_bins": self.num_bins, "hash_buckets": self.hash_buckets,
            "fields": [
                {**s.to_dict(), "hashed": self.hashed.get(s.name),
                 "scaler": self.scalers[s.name].to_dict() if s.name in self.scalers else None}
                for s in self.specs
            ],
        }
        (directory / "encoder.json").write_text(json.dumps(meta, indent=1))
        arrays = {}
        for i, spec in enumerate(self.specs):
            if spec.name in self.vocab:
                arrays[f"vocab_{i}"] = self.vocab[spec.name]
            elif spec.name in self.edges:
                arrays[f"edges_{i}"] = self.edges[spec.name]
        np.savez(directory / "encoder.npz", **arrays)
        lists = {f"values_{i}": pa.ListArray.from_arrays([0, len(self._values[s.name])], self._values[s.name])
                 for i, s in enumerate(self.specs) if s.name in self._values}
        pa.feather.write_feather(pa.table(lists), directory / "vocabulary.arrow")

    @classmethod
    def load(cls, directory: Path) -> Encoder:
        meta = json.loads((directory / "encoder.json").read_text())
        specs = [FieldSpec(**{k: v for k, v in f.items() if k not in ("hashed", "scaler")}) for f in meta["fields"]]
        encoder = cls(specs, min_count=meta["min_count"], num_bins=meta["num_bins"],
                      hash_buckets=meta["hash_buckets"])
        encoder._counts, encoder._samples, encoder._stats = {}, {}, {}
        vocabulary = pa.feather.read_table(directory / "vocabulary.arrow")
        with np.load(directory / "encoder.npz") as arrays:
            for i, f in enumerate(meta["fields"]):
                if f["hashed"] is not None:
                    encoder.hashed[f["name"]] = f["hashed"]
                elif f["kind"] == "quantile":
                    encoder.edges[f["name"]] = arrays[f"edges_{i}"]
                elif f["kind"] == "value":
                    encoder.scalers[f["name"]] = Scaler(**f["scaler"])
                else:
                    encoder.vocab[f["name"]] = arrays[f"vocab_{i}"]
                    values = vocabulary.column(f"values_{i}").chunk(0).flatten()
                    categorical = f["kind"] == "categorical"
                    encoder._values[f["name"]] = values.cast(pa.large_string()) if categorical else values
        return encoder

    def _transform_field(self, spec: FieldSpec, column: pa.Array) -> np.ndarray:
        """Local indices of a prepared column: a dictionary's distinct values are looked up once."""
        if spec.kind == "quantile":
            values = column.to_numpy()
            local = FIRST_VALUE + np.searchsorted(self.edges[spec.name], values, side="right")
            return np.where(np.isnan(values), MISSING, local).astype(np.int64)
        distinct = column.dictionary
        if spec.name in self.hashed:
            per_value = FIRST_VALUE + (_keys(spec, distinct) % np.uint64(self.hashed[spec.name])).astype(np.int64)
        else:
            position = pc.index_in(distinct, value_set=self._values[spec.name])
            per_value = pc.fill_null(position, OOV - FIRST_VALUE).to_numpy().astype(np.int64) + FIRST_VALUE
        return np.append(per_value, MISSING)[_codes(column)]


class _Counts:
    """Streaming counts of values (the distinct values of each chunk and their counts), merged
    once enough distinct values have piled up."""

    def __init__(self):
        self._values: list[pa.Array] = []
        self._counts: list[np.ndarray] = []
        self._pending = 0
        self._merged = 0

    def add(self, values: pa.Array, counts: np.ndarray) -> None:
        """Distinct ``values`` (no nulls) seen ``counts`` times each."""
        self._values.append(values)
        self._counts.append(counts)
        self._pending += len(counts)
        if self._pending > max(1 << 20, self._merged):
            self._merge()

    def totals(self) -> tuple[pa.Array, np.ndarray]:
        """Every value seen and its count."""
        self._merge()
        return self._values[0], self._counts[0]

    def _merge(self) -> None:
        if len(self._values) == 1 and not self._pending:
            return
        if not self._values:
            self._values, self._counts = [pa.array([], pa.large_string())], [np.zeros(0, np.int64)]
            return
        encoded = pc.dictionary_encode(pa.concat_arrays(self._values))
        totals = np.bincount(encoded.indices.to_numpy(), weights=np.concatenate(self._counts),
                             minlength=len(encoded.dictionary))
        self._values, self._counts = [encoded.dictionary], [np.rint(totals).astype(np.int64)]
        self._merged, self._pending = len(totals), 0


def _values(spec: FieldSpec, column: pd.Series) -> pa.Array:
    """What a field counts, as an arrow array with nulls where missing: the string form of
    each value (categorical; an empty string is missing), or its log bucket key (``log_bucket``)."""
    if spec.kind == "log_bucket":
        x = _numbers(column)
        missing = np.isnan(x)
        is_bucket = x > 2
        code = np.where(is_bucket, np.floor(np.log(np.where(is_bucket, x, 1.0)) ** 2), np.nan_to_num(x))
        keys = pd.util.hash_array(code) ^ np.where(is_bucket, _LOG_BUCKET_TAG, np.uint64(0))
        return pa.array(keys, mask=missing)
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        text = pa.array(column.array).cast(pa.large_string())
    else:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        unique_text = pa.array(np.asarray(pd.Index(uniques).astype(str), dtype=object), type=pa.large_string())
        text = unique_text.take(pa.array(codes, mask=codes < 0))
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    empty = pc.equal(text, "")
    return pc.if_else(empty, pa.scalar(None, pa.large_string()), text) if pc.any(empty).as_py() else text


def _column(table: pa.Table, name: str) -> pa.Array:
    """Column ``name`` of ``table`` as one array (a prepared chunk has one chunk per column)."""
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _codes(column: pa.DictionaryArray) -> np.ndarray:
    """Each row's code into ``column.dictionary``; ``len(dictionary)`` where the value is missing."""
    return pc.fill_null(column.indices, len(column.dictionary)).to_numpy()


def _keys(spec: FieldSpec, values: pa.Array) -> np.ndarray:
    """64-bit keys of ``values`` (from ``_values``; 0 where null): a log bucket key is its own key,
    a string is hashed once per distinct value."""
    if spec.kind == "log_bucket":
        return pc.fill_null(values, 0).to_numpy()
    encoded = pc.dictionary_encode(values)
    unique = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    unique_keys = pd.util.hash_array(unique) if len(unique) else np.empty(0, np.uint64)
    return np.append(unique_keys, np.uint64(0))[pc.fill_null(encoded.indices, len(unique)).to_numpy()]


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column).to_numpy(dtype=np.float64, na_value=np.nan)
