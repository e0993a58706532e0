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
* ``"quantile"``: numbers cut into at most ``num_bins`` bins at quantiles of the training
  values (duplicate edges merged); values beyond the training range fall in the end bins.

Fitting sees only training rows (``partial_fit`` per chunk, then ``finish_fit``), so a data
set of any length is counted in one streaming pass. Train/val/test membership is a seeded
hash of each record's id (``data.splits``), independent of chunking and of other rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import Field

OOV, MISSING, FIRST_VALUE = 0, 1, 2
KINDS = ("categorical", "log_bucket", "quantile")
_LOG_BUCKET_TAG = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class FieldSpec:
    """One raw column and how it becomes a field: ``kind`` is one of ``KINDS``."""

    name: str
    kind: str = "categorical"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")


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
        self._counts = {s.name: _KeyCounts() for s in self.specs if s.kind != "quantile"}
        self._samples: dict[str, list[np.ndarray]] = {s.name: [] for s in self.specs if s.kind == "quantile"}
        self._lookup: dict[str, pd.Index] = {}

    def partial_fit(self, frame: pd.DataFrame) -> None:
        """Count the values of training rows ``frame`` (call once per chunk)."""
        for spec in self.specs:
            if spec.kind == "quantile":
                values = _numbers(frame[spec.name])
                self._samples[spec.name].append(values[~np.isnan(values)])
            else:
                keys, missing = _keys(spec, frame[spec.name])
                self._counts[spec.name].add(keys[~missing])

    def finish_fit(self) -> Encoder:
        """Turn the counts into vocabularies (``min_count``, hashing) and bin edges."""
        for spec in self.specs:
            if spec.kind == "quantile":
                values = np.concatenate(self._samples.pop(spec.name))
                quantiles = np.linspace(0, 1, self.num_bins + 1)[1:-1]
                edges = np.quantile(values, quantiles) if len(values) else np.empty(0)
                self.edges[spec.name] = np.unique(edges)
                continue
            keys, counts = self._counts.pop(spec.name).totals()
            kept = counts >= self.min_count
            if self.hash_buckets is not None and kept.sum() > self.hash_buckets:
                self.hashed[spec.name] = self.hash_buckets
            else:
                order = np.lexsort((keys[kept], -counts[kept]))
                self.vocab[spec.name] = keys[kept][order]
        self._build_lookup()
        return self

    def fit(self, frame: pd.DataFrame) -> Encoder:
        """Fit on one in-memory frame of training rows."""
        self.partial_fit(frame)
        return self.finish_fit()

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Local indices ``[len(frame), num_fields]`` (int64) of the rows of ``frame``."""
        out = np.empty((len(frame), len(self.specs)), dtype=np.int64)
        for f, spec in enumerate(self.specs):
            out[:, f] = self._transform_field(spec, frame[spec.name])
        return out

    @property
    def vocab_sizes(self) -> dict[str, int]:
        """Local indices per field, the OOV and missing slots included."""
        sizes = {}
        for spec in self.specs:
            if spec.kind == "quantile":
                sizes[spec.name] = FIRST_VALUE + len(self.edges[spec.name]) + 1
            elif spec.name in self.hashed:
                sizes[spec.name] = FIRST_VALUE + self.hashed[spec.name]
            else:
                sizes[spec.name] = FIRST_VALUE + len(self.vocab[spec.name])
        return sizes

    def fields(self) -> list[Field]:
        return [Field(name, size, oov=True) for name, size in self.vocab_sizes.items()]

    def rules(self) -> dict[str, str]:
        """One line per field saying how its raw values were encoded."""
        rules = {}
        for spec in self.specs:
            if spec.kind == "quantile":
                rules[spec.name] = f"quantile bins fitted on train (num_bins={self.num_bins})"
            elif spec.name in self.hashed:
                rules[spec.name] = f"hashed into {self.hashed[spec.name]} buckets"
            else:
                prefix = "log bucket floor(ln(x)^2) for x > 2, else x; " if spec.kind == "log_bucket" else ""
                rules[spec.name] = f"{prefix}vocabulary of train values seen >= {self.min_count} times"
        return rules

    def save(self, directory: Path) -> None:
        """Write ``encoder.json`` and ``encoder.npz`` into ``directory``."""
        meta = {
            "min_count": self.min_count, "num_bins": self.num_bins, "hash_buckets": self.hash_buckets,
            "fields": [
                {"name": s.name, "kind": s.kind, "hashed": self.hashed.get(s.name)} for s in self.specs
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

    @classmethod
    def load(cls, directory: Path) -> Encoder:
        meta = json.loads((directory / "encoder.json").read_text())
        specs = [FieldSpec(f["name"], f["kind"]) for f in meta["fields"]]
        encoder = cls(specs, min_count=meta["min_count"], num_bins=meta["num_bins"],
                      hash_buckets=meta["hash_buckets"])
        encoder._counts, encoder._samples = {}, {}
        with np.load(directory / "encoder.npz") as arrays:
            for i, f in enumerate(meta["fields"]):
                if f["hashed"] is not None:
                    encoder.hashed[f["name"]] = f["hashed"]
                elif f["kind"] == "quantile":
                    encoder.edges[f["name"]] = arrays[f"edges_{i}"]
                else:
                    encoder.vocab[f["name"]] = arrays[f"vocab_{i}"]
        encoder._build_lookup()
        return encoder

    def _build_lookup(self) -> None:
        self._lookup = {name: pd.Index(keys, dtype=np.uint64) for name, keys in self.vocab.items()}

    def _transform_field(self, spec: FieldSpec, column: pd.Series) -> np.ndarray:
        if spec.kind == "quantile":
            values = _numbers(column)
            local = FIRST_VALUE + np.searchsorted(self.edges[spec.name], values, side="right")
            missing = np.isnan(values)
        else:
            keys, missing = _keys(spec, column)
            if spec.name in self.hashed:
                local = FIRST_VALUE + (keys % np.uint64(self.hashed[spec.name])).astype(np.int64)
            else:
                local = self._vocabulary_index(spec.name, keys)
        return np.where(missing, MISSING, local).astype(np.int64)

    def _vocabulary_index(self, name: str, keys: np.ndarray) -> np.ndarray:
        position = self._lookup[name].get_indexer(keys)
        return np.where(position >= 0, FIRST_VALUE + position, OOV)


class _KeyCounts:
    """Streaming counts of 64-bit keys: per-chunk counts merged once enough have piled up."""

    def __init__(self):
        self._parts: list[pd.Series] = []
        self._pending = 0
        self._merged = 0

    def add(self, keys: np.ndarray) -> None:
        counts = pd.Series(keys, dtype=np.uint64).value_counts(sort=False)
        self._parts.append(counts)
        self._pending += len(counts)
        if self._pending > max(1 << 20, self._merged):
            self._merge()

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        self._merge()
        merged = self._parts[0]
        return merged.index.to_numpy(np.uint64), merged.to_numpy(np.int64)

    def _merge(self) -> None:
        if not self._parts:
            self._parts = [pd.Series([], dtype=np.int64, index=pd.Index([], dtype=np.uint64))]
        merged = pd.concat(self._parts).groupby(level=0, sort=False).sum()
        self._parts, self._merged, self._pending = [merged], len(merged), 0


def _keys(spec: FieldSpec, column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """64-bit keys of the values of ``column`` and its missing mask."""
    if spec.kind == "log_bucket":
        x = _numbers(column)
        missing = np.isnan(x)
        is_bucket = x > 2
        code = np.where(is_bucket, np.floor(np.log(np.where(is_bucket, x, 1.0)) ** 2), np.nan_to_num(x))
        return pd.util.hash_array(code) ^ np.where(is_bucket, _LOG_BUCKET_TAG, np.uint64(0)), missing
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    text = np.asarray(pd.Index(uniques).astype(str), dtype=object)
    unique_keys = pd.util.hash_array(text) if len(text) else np.empty(0, dtype=np.uint64)
    unique_missing = np.append(text == "", True)  # the extra entry answers code -1 (NaN)
    return np.append(unique_keys, np.uint64(0))[codes], unique_missing[codes]


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column).to_numpy(dtype=np.float64, na_value=np.nan)
