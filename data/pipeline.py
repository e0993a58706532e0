"""The pipeline every real data set goes through: raw chunks -> checks -> encoder -> Dataset.

``LoadOptions`` are the options of every raw-file loader (the registry reads its fields, so a
new pipeline option is one edit here). ``load_source(source, options)`` reads the cache, or,
in one streaming pass over ``source.read()`` and one over the chunks it kept,

1. drops or reports bad rows (the source's own ``Problem``s, missing or non-0/1 labels,
   unparsable numbers): with ``on_bad_rows="error"`` the first one raises a ``DataError``
   naming file, line and problem; with ``"skip"`` they are counted and listed in
   ``info["dropped"]``;
2. assigns each record to train / val / test (``data.splits``), reduces each chunk to what
   the ``Encoder`` needs (``Encoder.prepare``: per field its distinct values and a code per
   row, or its numbers), counts the training rows and keeps the prepared chunk on disk (Arrow
   IPC in the folder being written), so the raw text is read and parsed once;
3. fits the encoder on the training counts, encodes every kept chunk into global indices
   (and values, when a field keeps its number as a value: ``info["numeric"]`` then holds per
   such column the fitted statistics, the missing rate and the clipped share per split) and writes
   the result, the fitted encoder and the audit to the cache (``data.cache``), from where the next load reads it back.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather

from .cache import changed_files, file_checksum, is_complete, processed_dir, read_processed, write_processed
from .encoding import MISSING, OOV, Encoder
from .raw import Chunk, DataError, Problem, Source, binary_labels, parse_numbers
from .schema import Dataset, Schema
from .splits import SPLITS, assign_splits
from .storage import STORAGES, SplitWriter

_FIRST_LISTED = 5


@dataclass(frozen=True)
class LoadOptions:
    """Options of every raw-file loader; a loader with options of its own subclasses this.

    ``path``: the raw file or folder (else the loader's environment variable); ``rows``: keep
    the first ``rows`` records of the file (all if None); ``min_count``: a training value seen
    fewer times is out of vocabulary; ``num_bins``: quantile bins of numeric fields;
    ``hash_buckets``: hash a field whose vocabulary would exceed this many values; ``split``:
    train/val/test fractions; ``seed``: of the split hash; ``on_bad_rows``: ``"error"`` or
    ``"skip"``; ``storage``: ``"memory"``, ``"mmap"`` or ``"auto"`` (by size, see
    ``data.storage``). Every option but ``path`` and ``storage`` keys the cache and is kept in
    ``info["options"]``.
    """

    path: str | None = None
    rows: int | None = None
    min_count: int = 2
    num_bins: int = 10
    hash_buckets: int | None = None
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    on_bad_rows: str = "error"
    storage: str = "auto"

    def check(self, dataset: str) -> None:
        """Raise ``ValueError`` naming the first option that is out of range."""
        split = tuple(self.split)
        if len(split) != 3 or min(split) <= 0 or abs(sum(split) - 1) > 1e-9:
            raise ValueError(f"{dataset}: split must be three positive fractions summing to 1, got {split}")
        if self.on_bad_rows not in ("error", "skip"):
            raise ValueError(f"{dataset}: on_bad_rows must be 'error' or 'skip', got {self.on_bad_rows!r}")
        if self.storage not in STORAGES:
            raise ValueError(f"{dataset}: storage must be one of {STORAGES}, got {self.storage!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"{dataset}: seed must be an integer >= 0, got {self.seed!r}")
        for name, least in (("min_count", 1), ("num_bins", 2)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{dataset}: {name} must be an integer >= {least}, got {value!r}")
        for name in ("hash_buckets", "rows"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{dataset}: {name} must be None or an integer >= 1, got {value!r}")

    def key(self) -> dict:
        """The options that change the encoded data, as JSON values."""
        kept = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("path", "storage")}
        return json.loads(json.dumps(kept))


def load_source(source: Source, options: LoadOptions) -> Dataset:
    """Encode ``source`` with ``options`` (checked by the registry) or read it back from the cache."""
    started = time.perf_counter()
    files = {**source.files, **({source.truth.name: source.truth} if source.truth else {})}
    checksums = {name: file_checksum(path) for name, path in files.items()}
    paths = {name: str(Path(path).resolve()) for name, path in files.items()}
    directory = processed_dir(source.dataset, checksums=checksums, options=options.key(),
                              fields=[spec.to_dict() for spec in source.fields])
    cache, changed = "hit", []
    if not is_complete(directory):
        changed = changed_files(source.dataset, options.key(), checksums, paths)
        if changed:
            warnings.warn(f"{source.dataset}: {', '.join(changed)} changed since it was cached (another "
                          "checksum); encoding it again", stacklevel=4)
        write_processed(directory, lambda folder: _encode(folder, source, options, checksums, paths))
        cache = "miss"
    dataset = read_processed(directory, options.storage)
    if changed:
        dataset.info["changed_files"] = changed
    dataset.info.update(source=source.description, cache=cache, cache_dir=str(directory),
                        load_seconds=round(time.perf_counter() - started, 3))
    return dataset


@dataclass
class _Part:
    frame: pd.DataFrame
    labels: np.ndarray
    split: np.ndarray
    prob: np.ndarray | None
    problems: list[Problem]
    dropped: int


def _clean(source: Source, options: LoadOptions) -> Iterator[_Part]:
    numeric = [s.name for s in source.fields if s.numeric]
    truth = np.load(source.truth, mmap_mode="r") if source.truth else None
    for chunk in _read_ahead(source.read()):
        raw_label = chunk.frame[source.label]
        labels, missing, unmappable = binary_labels(raw_label)
        chunk.problem(f"missing label in column {source.label!r}", missing, lambda i: "the value is empty")
        chunk.problem(
            f"label not 0/1 in column {source.label!r}", unmappable,
            lambda i, raw_label=raw_label: f"value {raw_label.iloc[i]!r}; expected 0/1, true/false or yes/no",
        )
        parse_numbers(chunk, numeric)
        if chunk.problems and options.on_bad_rows == "error":
            first = min(chunk.problems, key=lambda p: p.positions[0])
            raise DataError(f"{first.message(source.dataset)}. Pass on_bad_rows='skip' to drop such rows "
                            "(they are counted in info['dropped']).")
        bad = np.unique(np.concatenate([p.positions for p in chunk.problems] or [np.empty(0, np.int64)]))
        keep = ~chunk.frame.index.isin(bad)
        frame = chunk.frame[keep]
        record_ids = frame.index.to_numpy() - chunk.header_lines
        split = assign_splits(record_ids, tuple(options.split), options.seed)
        yield _Part(frame, labels[keep], split, _truth(source, truth, record_ids), chunk.problems, len(bad))


def _read_ahead(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    """``chunks``, the next one read in a background thread while the caller works on this one."""
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(next, chunks, None)
        while (chunk := ahead.result()) is not None:
            ahead = pool.submit(next, chunks, None)
            yield chunk


def _truth(source: Source, truth: np.ndarray | None, record_ids: np.ndarray) -> np.ndarray | None:
    if truth is None:
        return None
    if len(record_ids) and record_ids.max() > len(truth):
        raise DataError(f"{source.dataset}: {source.truth} holds {len(truth)} probabilities but the data has "
                        f"row {int(record_ids.max())}; write the file and its side file together")
    return np.asarray(truth[record_ids - 1], np.float32)


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


def _encode(folder: Path, source: Source, options: LoadOptions, checksums: dict, paths: dict) -> None:
    """One pass over the raw file: check, split, ``prepare`` each chunk, count its training rows and
    keep it in ``folder/pass1``; then fit, and encode the kept chunks into ``folder``."""
    encoder = Encoder(source.fields, min_count=options.min_count, num_bins=options.num_bins,
                      hash_buckets=options.hash_buckets)
    audit = _Audit()
    kept = folder / "pass1"
    kept.mkdir()
    parts = 0
    for part in _clean(source, options):
        audit.add(part)
        prepared = encoder.prepare(part.frame)
        encoder.fit_prepared(prepared, part.split == 0)
        _keep(kept / f"{parts}.arrow", prepared, part)
        parts += 1
    audit.check(source)
    encoder.finish_fit()
    schema = Schema(encoder.fields())
    offsets = np.array(schema.offsets, dtype=np.int64)
    writer = SplitWriter(folder, audit.rows, schema.num_fields, schema.num_features, source.truth is not None,
                         schema.has_values)
    oov = np.zeros((3, schema.num_fields), np.int64)
    missing = np.zeros((3, schema.num_fields), np.int64)
    clipped = np.zeros((3, schema.num_fields), np.int64)
    for k in range(parts):
        prepared, labels, split, prob = _kept(kept / f"{k}.arrow")
        local, values, clips = encoder.encode_prepared(prepared)
        member = np.stack([split == s for s in range(3)]).astype(np.float32)  # [3, n]: rows per split
        oov += _count(member, local == OOV)
        missing += _count(member, local == MISSING)
        if clips is not None:
            clipped += _count(member, clips)
        local += offsets
        for s in range(3):
            rows = split == s
            writer.append(s, local[rows], labels[rows], None if prob is None else prob[rows],
                          None if values is None else values[rows])
        (kept / f"{k}.arrow").unlink()
    kept.rmdir()
    writer.flush()
    names = list(schema.names)
    categorical = [i for i, f in enumerate(schema.fields) if f.kind != "numeric"]
    fractions = "/".join(f"{f:g}" for f in options.split)
    info = {
        "label": source.label_rule,
        "split_rule": f"random {fractions}: each record goes to train/val/test by a hash of its data row "
                      f"number seeded with {options.seed}; sizes are binomial around the fractions",
        "rows": {name: int(audit.rows[s]) for s, name in enumerate(SPLITS)},
        "positive_rate": {name: round(float(audit.positives[s] / audit.rows[s]), 4)
                          for s, name in enumerate(SPLITS)},
        "vocab_size": encoder.vocab_sizes,
        "oov_rate": {name: {names[i]: round(float(oov[s, i] / audit.rows[s]), 5) for i in categorical}
                     for s, name in enumerate(SPLITS)},
        "missing": {f: int(missing[:, i].sum()) for i, f in enumerate(names)},
        "numeric": {f: {**scaler.describe(),
                        "missing_rate": {name: round(float(missing[s, i] / audit.rows[s]), 5)
                                         for s, name in enumerate(SPLITS)},
                        "clipped_share": {name: round(float(clipped[s, i] / audit.rows[s]), 5)
                                          for s, name in enumerate(SPLITS)}}
                    for i, f in enumerate(names) if (scaler := encoder.scalers.get(f))},
        "dropped": {"rows": int(audit.dropped), "reasons": audit.reasons},
        "checksum": checksums,
        "files": paths,
        "encoding": encoder.rules(),
        "options": options.key(),
    }
    encoder.save(folder)
    meta = {"name": source.dataset, "schema": schema.to_dict(), "info": info}
    (folder / "dataset.json").write_text(json.dumps(meta, indent=1))


def _count(member: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Per split and field, how many rows have the flag: ``member [3, n] @ flags [n, F]``
    (float32 sums of 0/1 are exact below 2**24 rows per chunk)."""
    return np.rint(member @ flags.astype(np.float32)).astype(np.int64)


_LABEL, _SPLIT, _PROB = "\0label", "\0split", "\0prob"


def _keep(path: Path, prepared: pa.Table, part: _Part) -> None:
    """Write a prepared chunk with its labels, splits and true probabilities (uncompressed Arrow IPC)."""
    table = prepared.append_column(_LABEL, pa.array(part.labels)).append_column(_SPLIT, pa.array(part.split))
    if part.prob is not None:
        table = table.append_column(_PROB, pa.array(part.prob))
    pa.feather.write_feather(table, path, compression="uncompressed", chunksize=max(1, table.num_rows))


def _kept(path: Path) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray | None]:
    """``(prepared, labels, splits, prob or None)`` of a chunk written by ``_keep``, memory-mapped."""
    table = pa.feather.read_table(path, memory_map=True)
    prob = table.column(_PROB).to_numpy() if _PROB in table.column_names else None
    return table, table.column(_LABEL).to_numpy(), table.column(_SPLIT).to_numpy(), prob
