"""libFFM and libSVM text files: ``data.load("libffm", path=..., format="ffm" | "svm")``.

One record per line, whitespace-separated: the label (``0``/``1``, also ``-1``/``+1`` as in
libSVM), then features, ``field:index:value`` (``format="ffm"``) or ``index:value``
(``format="svm"``). Blank lines are ignored.

* ffm: every field number seen in the file becomes a schema field ``field<k>`` (in ascending
  order); the index within the field is a category, encoded by the pipeline (vocabulary fitted
  on train, ``min_count``, OOV and missing slots: a line without a feature of that field is
  missing), and the value travels as the field's value (``Field.valued``).
* svm: every index becomes a field ``i<index>`` with one category (present; absent = missing)
  whose value is the number.

If every value in the file is 1, no values are kept (the fields are plain categorical ones).
A line with two features of one field, a malformed feature or a bad label is a bad row
(``on_bad_rows``: the error names the file and line, or the row is dropped and counted). The
file is read three times: once here for its fields, then the pipeline's two passes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..encoding import FieldSpec
from ..pipeline import LoadOptions, load_source
from ..raw import Chunk, DataError, Source, resolve_file
from ..registry import register
from ..schema import Dataset

FORMATS = {"ffm": 3, "svm": 2}  # parts of one feature
_LINES_PER_CHUNK = 1 << 16
_LABELS = {"-1": "0", "+1": "1"}


@dataclass(frozen=True)
class LibffmOptions(LoadOptions):
    """``LoadOptions`` and ``format``: ``"ffm"`` (``field:index:value``) or ``"svm"`` (``index:value``)."""

    format: str = "ffm"

    def check(self, dataset: str) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"{dataset}: format must be one of {sorted(FORMATS)}, got {self.format!r}")
        super().check(dataset)


@register("libffm", LibffmOptions)
def libffm(options: LibffmOptions) -> Dataset:
    """A libFFM / libSVM text file (see the module)."""
    file = resolve_file(options.path, "CTRBENCH_LIBFFM", "libffm")
    fields, valued = set(), False
    for chunk in _chunks(file, options.format, options.rows):
        names = [c for c in chunk.frame.columns if c != "label" and not c.endswith(":value")]
        fields.update(names)
        valued = valued or any((chunk.frame[f"{n}:value"].dropna() != 1).any() for n in names)
    if not fields:
        raise DataError(f"libffm: {file}: no features in the file (expected {_example(options.format)})")
    order = sorted(fields, key=lambda name: int(name.removeprefix("field").removeprefix("i")))
    specs = [FieldSpec(name, value_column=f"{name}:value" if valued else None) for name in order]
    columns = ["label", *order, *(f"{n}:value" for n in order)]

    def read():
        for chunk in _chunks(file, options.format, options.rows):
            chunk.frame = chunk.frame.reindex(columns=columns)
            yield chunk

    source = Source("libffm", {file.name: file}, specs, "label", read, f"lib{options.format} text ({file})",
                    "first token (1 or +1 = click)")
    return load_source(source, options)


def _example(fmt: str) -> str:
    return "'label field:index:value ...'" if fmt == "ffm" else "'label index:value ...'"


def _chunks(file: Path, fmt: str, rows: int | None) -> Iterator[Chunk]:
    """Chunks of parsed lines: ``label`` and, per field, its index (``<field>``) and value (``<field>:value``)."""
    left = rows
    with open(file, encoding="utf-8") as f:
        first = 1
        while left is None or left > 0:
            lines = list(itertools.islice(f, _LINES_PER_CHUNK))
            if not lines:
                return
            chunk = _parse(lines, first, file, fmt)
            if left is not None:
                chunk.frame = chunk.frame.iloc[:left]
                chunk.problems = [p for p in chunk.problems if p.positions[0] <= chunk.frame.index[-1]]
                left -= len(chunk.frame)
            first += len(lines)
            yield chunk


def _parse(lines: list[str], first: int, file: Path, fmt: str) -> Chunk:
    parts_per_feature = FORMATS[fmt]
    numbers, labels, records, bad = [], [], [], {}
    for offset, text in enumerate(lines):
        tokens = text.split()
        if not tokens:
            continue
        line = first + offset
        numbers.append(line)
        labels.append(_LABELS.get(tokens[0], tokens[0]))
        seen = set()
        for token in tokens[1:]:
            parts = token.split(":")
            try:
                if len(parts) != parts_per_feature:
                    raise ValueError
                value = float(parts[-1])
                field = f"field{int(parts[0])}" if fmt == "ffm" else f"i{int(parts[0])}"
                index = parts[1] if fmt == "ffm" else "1"
            except ValueError:
                bad.setdefault(line, ("malformed feature", f"token {token!r}; expected {_example(fmt)}"))
                continue
            if field in seen:
                bad.setdefault(line, ("two features of one field", f"field {parts[0]} appears twice"))
            seen.add(field)
            records.append((line, field, index, value))
    index = pd.Index(numbers, name="line")
    frame = pd.DataFrame({"label": labels}, index=index)
    if records:
        long = pd.DataFrame(records, columns=["line", "field", "index", "value"]).drop_duplicates(["line", "field"])
        wide = long.pivot(index="line", columns="field", values=["index", "value"]).reindex(index)
        for name in wide["index"].columns:
            frame[name] = wide["index"][name].to_numpy(dtype=object)
            frame[f"{name}:value"] = wide["value"][name].to_numpy(dtype=np.float64)
    chunk = Chunk(frame, file, "line")
    for reason in sorted({r for r, _ in bad.values()}):
        lines_with = {n: d for n, (r, d) in bad.items() if r == reason}
        chunk.problem(reason, index.isin(list(lines_with)), lambda i, lines_with=lines_with: lines_with[int(index[i])])
    return chunk
