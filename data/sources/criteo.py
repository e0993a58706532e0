"""Criteo display advertising challenge (Kaggle ``train.txt``): ``data.load("criteo", path=...)``.

Tab-separated, no header: the 0/1 label, 13 integer features ``I1..I13`` (by default bucketed by
the Kaggle winners' rule ``floor(ln(x)^2)`` for ``x > 2``, as in BARS; with ``numeric_as="value"``
kept as values, ``sign(x) log1p(|x|)`` standardised on train by default: ``scaling``,
``data.numeric_options``) and 26 hashed categorical features
``C1..C26``; an empty value is missing. Read in blocks and encoded in two streaming passes,
so memory does not grow with the file. ``rows`` keeps the first rows of the file. The split is a
BARS-style seeded random 8:1:1 (per-line hash, see ``data.splits.assign_splits``).
A ``<file>.prob.npy`` beside the file (``python -m data.generate``) gives each row's true
probability (``Split.prob``, the oracle).
"""

from __future__ import annotations

from ..encoding import FieldSpec
from ..numeric_options import NumericOptions
from ..pipeline import load_source
from ..raw import Source, resolve_file, truth_beside
from ..registry import register
from ..schema import Dataset
from .text import read_blocks

INTEGER_COLUMNS = [f"I{i}" for i in range(1, 14)]
CATEGORICAL_COLUMNS = [f"C{i}" for i in range(1, 27)]
COLUMNS = ["label", *INTEGER_COLUMNS, *CATEGORICAL_COLUMNS]


@register("criteo", NumericOptions, min_count=10, scaling="log1p")
def criteo(options: NumericOptions) -> Dataset:
    """Criteo from ``path`` (or ``$CTRBENCH_CRITEO``); ``min_count=10`` as in BARS criteo_x1."""
    fields = options.specs("criteo", INTEGER_COLUMNS, "log_bucket") + [FieldSpec(c) for c in CATEGORICAL_COLUMNS]
    file = resolve_file(options.path, "CTRBENCH_CRITEO", "criteo")
    source = Source(
        "criteo", {file.name: file}, fields, "label",
        lambda: read_blocks(file, columns=COLUMNS, sep="\t", header=False, rows=options.rows,
                            numbers=tuple(INTEGER_COLUMNS)),
        f"Criteo Kaggle text format ({file})", "first column (1 = click)", truth_beside(file),
    )
    return load_source(source, options)
