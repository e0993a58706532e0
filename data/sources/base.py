"""The pipeline every real data set goes through: raw chunks -> checks -> encoder -> Dataset.

A source only declares its files, its fields (``FieldSpec``), its label column and a
``read()`` that yields ``Chunk``s: frames of raw columns whose index is the 1-based line (or
row) number of each record in its file. ``load_source`` then, in two streaming passes,

1. drops or reports bad rows (the source's own ``Problem``s, missing or non-0/1 labels,
   unparsable numbers): with ``on_bad_rows="error"`` the first one raises a ``DataError``
   naming file, line and problem; with ``"skip"`` they are counted and listed in
   ``info["dropped"]``;
2. assigns each record to train / val / test by a seeded hash of its data row number and fits
   the ``Encoder`` on the training rows only;
3. encodes every split into global indices and writes the result, the fitted encoder and the
   audit to the cache (see ``data.cache``), from where the next load reads it back.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..cache import file_checksum, processed_dir, write_atomically
from ..encoding import MISSING, OOV, SPLITS, DataError, Encoder, FieldSpec, assign_splits, binary_labels
from ..schema import Dataset, Schema, Split

_FIRST_LISTED = 5


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
    """What a raw data set declares; ``read()`` is called once per pass."""

    dataset: str
    files: dict[str, Path]
    fields: list[FieldSpec]
    label: str
    read: Callable[[], Iterator[Chunk]]
    description: str
    label_rule: str


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
        values = _floats(raw)
        unparsable = (values.isna() & raw.notna() & (raw.astype(str) != "")).to_numpy()
        chunk.problem(f"unparsable number in column {column!r}", unparsable,
                      lambda i, raw=raw: f"value {raw.iloc[i]!r} is not a number")
        parsed[column] = values
    chunk.frame = chunk.frame.assign(**parsed)


def _floats(raw: pd.Series) -> pd.Series:
    """``raw`` as float64 (NaN where missing or unparsable); a direct cast first, as it is faster."""
    try:
        return raw.replace("", None).astype(np.float64)
    except (ValueError, TypeError):
        return pd.to_numeric(raw, errors="coerce").astype(np.float64)


def load_source(source: Source, options: dict) -> Dataset:
    """Encode ``source`` (or read it back from the cache); ``options`` are the loader's options.

    ``options`` must hold ``min_count``, ``split``, ``seed`` and ``on_bad_rows`` and may hold
    ``num_bins`` and ``hash_buckets``; all of them key the cache and are kept in ``info``.
    """
    started = time.perf_counter()
    options = json.loads(json.dumps(options))
    _check_options(source.dataset, options)
    checksums = {name: file_checksum(path) for name, path in source.files.items()}
    directory = processed_dir(source.dataset, checksums=checksums, options=options)
    if (directory / "dataset.json").exists():
        dataset, cache = _read(directory), "hit"
    else:
        dataset, encoder = _encode(source, options, checksums)
        write_atomically(directory, lambda tmp: _write(tmp, dataset, encoder))
        cache = "miss"
    dataset.info.update(source=source.description, cache=cache, cache_dir=str(directory),
                        load_seconds=round(time.perf_counter() - started, 3))
    return dataset


@dataclass
class _Part:
    frame: pd.DataFrame
    labels: np.ndarray
    split: np.ndarray
    problems: list[Problem]
    dropped: int


def _clean(source: Source, options: dict) -> Iterator[_Part]:
    numeric = [s.name for s in source.fields if s.kind != "categorical"]
    for chunk in source.read():
        raw_label = chunk.frame[source.label]
        labels, missing, unmappable = binary_labels(raw_label)
        chunk.problem(f"missing label in column {source.label!r}", missing, lambda i: "the value is empty")
        chunk.problem(
            f"label not 0/1 in column {source.label!r}", unmappable,
            lambda i, raw_label=raw_label: f"value {raw_label.iloc[i]!r}; expected 0/1, true/false or yes/no",
        )
        parse_numbers(chunk, numeric)
        if chunk.problems and options["on_bad_rows"] == "error":
            first = min(chunk.problems, key=lambda p: p.positions[0])
            raise DataError(f"{first.message(source.dataset)}. Pass on_bad_rows='skip' to drop such rows "
                            "(they are counted in info['dropped']).")
        bad = np.unique(np.concatenate([p.positions for p in chunk.problems] or [np.empty(0, np.int64)]))
        keep = ~chunk.frame.index.isin(bad)
        frame = chunk.frame[keep]
        record_ids = frame.index.to_numpy() - chunk.header_lines
        split = assign_splits(record_ids, tuple(options["split"]), options["seed"])
        yield _Part(frame, labels[keep], split, chunk.problems, len(bad))


class _Audit:
    """Rows, positives and dropped rows counted in the first pass."""

    def __init__(self):
        self.rows = np.zeros(3, np.int64)
        self.positives = np.zeros(3, np.int64)
        self.dropped = 0
        self.reasons: dict[str, dict] = {}

    def add(self, part: _Part) -> None:
        self.rows += np.bincount(part.split, minlength=3)
        self.positives += np.bincount(part.split, weights=part.labels, minlength=3).astype(np.int64)
        self.dropped += part.dropped
        for p in part.problems:
            entry = self.reasons.setdefault(p.reason, {"rows": 0, "first": [], "file": str(p.file),
                                                       "unit": p.unit})
            entry["rows"] += len(p.positions)
            entry["first"] = sorted(entry["first"] + p.positions[:_FIRST_LISTED].tolist())[:_FIRST_LISTED]

    def check(self, source: Source) -> None:
        if not self.rows.sum():
            if self.dropped:
                raise DataError(f"{source.dataset}: no usable rows: all {self.dropped} rows were dropped "
                                f"as bad: {self.reasons}")
            files = ", ".join(str(p) for p in source.files.values())
            raise DataError(f"{source.dataset}: {files}: the file has no data rows")
        for s, name in enumerate(SPLITS):
            if not self.rows[s]:
                raise DataError(f"{source.dataset}: split {name!r} is empty ({self.rows.sum()} usable rows "
                                "in all); use more rows or other split fractions")
            if self.positives[s] in (0, self.rows[s]):
                only = "negatives" if self.positives[s] == 0 else "positives"
                raise DataError(f"{source.dataset}: split {name!r} has only {only} ({self.rows[s]} rows); "
                                "every split needs both classes")


def _encode(source: Source, options: dict, checksums: dict) -> tuple[Dataset, Encoder]:
    encoder = Encoder(source.fields, min_count=options["min_count"], num_bins=options.get("num_bins", 10),
                      hash_buckets=options.get("hash_buckets"))
    audit = _Audit()
    for part in _clean(source, options):
        audit.add(part)
        encoder.partial_fit(part.frame[part.split == 0])
    audit.check(source)
    encoder.finish_fit()
    schema = Schema(encoder.fields())
    offsets = np.array(schema.offsets, dtype=np.int64)
    x = [np.empty((n, schema.num_fields), np.int64) for n in audit.rows]
    y = [np.empty(n, np.float32) for n in audit.rows]
    filled = np.zeros(3, np.int64)
    oov = np.zeros((3, schema.num_fields), np.int64)
    missing = np.zeros(schema.num_fields, np.int64)
    for part in _clean(source, options):
        local = encoder.transform(part.frame)
        missing += (local == MISSING).sum(0)
        for s in range(3):
            rows = part.split == s
            n, start = int(rows.sum()), filled[s]
            if start + n > len(y[s]):
                raise _changed_while_reading(source)
            x[s][start : start + n] = local[rows] + offsets
            y[s][start : start + n] = part.labels[rows]
            oov[s] += (local[rows] == OOV).sum(0)
            filled[s] += n
    if (filled != audit.rows).any():
        raise _changed_while_reading(source)
    splits = {name: Split(torch.from_numpy(x[s]), torch.from_numpy(y[s])) for s, name in enumerate(SPLITS)}
    names = list(schema.names)
    fractions = "/".join(f"{f:g}" for f in options["split"])
    info = {
        "label": source.label_rule,
        "split_rule": f"random {fractions}: each record goes to train/val/test by a hash of its data row "
                      f"number seeded with {options['seed']}; sizes are binomial around the fractions",
        "rows": {name: int(audit.rows[s]) for s, name in enumerate(SPLITS)},
        "positive_rate": {name: round(float(audit.positives[s] / audit.rows[s]), 4)
                          for s, name in enumerate(SPLITS)},
        "vocab_size": encoder.vocab_sizes,
        "oov_rate": {name: {f: round(float(oov[s, i] / audit.rows[s]), 5) for i, f in enumerate(names)}
                     for s, name in enumerate(SPLITS)},
        "missing": {f: int(missing[i]) for i, f in enumerate(names)},
        "dropped": {"rows": int(audit.dropped), "reasons": audit.reasons},
        "checksum": checksums,
        "encoding": encoder.rules(),
        "options": options,
    }
    dataset = Dataset(source.dataset, schema, splits["train"], splits["val"], splits["test"], info)
    return dataset, encoder


def _changed_while_reading(source: Source) -> DataError:
    files = ", ".join(str(p) for p in source.files.values())
    return DataError(f"{source.dataset}: {files} changed while being read (the two passes differ); "
                     "load again")


def _write(directory: Path, dataset: Dataset, encoder: Encoder) -> None:
    for name, split in dataset.splits().items():
        np.save(directory / f"{name}_x.npy", split.x.numpy())
        np.save(directory / f"{name}_y.npy", split.y.numpy())
    encoder.save(directory)
    meta = {"name": dataset.name, "schema": dataset.schema.to_dict(), "info": dataset.info}
    (directory / "dataset.json").write_text(json.dumps(meta, indent=1))


def _read(directory: Path) -> Dataset:
    meta = json.loads((directory / "dataset.json").read_text())
    splits = {
        name: Split(torch.from_numpy(np.load(directory / f"{name}_x.npy")),
                    torch.from_numpy(np.load(directory / f"{name}_y.npy")))
        for name in SPLITS
    }
    schema = Schema.from_dict(meta["schema"])
    return Dataset(meta["name"], schema, splits["train"], splits["val"], splits["test"], meta["info"])


def _check_options(dataset: str, options: dict) -> None:
    split = tuple(options["split"])
    if len(split) != 3 or min(split) <= 0 or abs(sum(split) - 1) > 1e-9:
        raise ValueError(f"{dataset}: split must be three positive fractions summing to 1, got {split}")
    if options["on_bad_rows"] not in ("error", "skip"):
        raise ValueError(f"{dataset}: on_bad_rows must be 'error' or 'skip', got {options['on_bad_rows']!r}")
    if not isinstance(options["seed"], int) or options["seed"] < 0:
        raise ValueError(f"{dataset}: seed must be an integer >= 0, got {options['seed']!r}")
    if not isinstance(options["min_count"], int) or options["min_count"] < 1:
        raise ValueError(f"{dataset}: min_count must be an integer >= 1, got {options['min_count']!r}")
    if options.get("num_bins", 2) < 2:
        raise ValueError(f"{dataset}: num_bins must be >= 2, got {options['num_bins']!r}")
    for name in ("hash_buckets", "max_rows"):
        value = options.get(name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{dataset}: {name} must be None or an integer >= 1, got {value!r}")
