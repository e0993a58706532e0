"""Criteo display advertising challenge (Kaggle ``train.txt``): ``data.load("criteo", path=...)``.

Tab-separated, no header: the 0/1 label, 13 integer features ``I1..I13`` (bucketed by the
Kaggle winners' rule ``floor(ln(x)^2)`` for ``x > 2``) and 26 hashed categorical features
``C1..C26``; an empty value is missing. Read in blocks, so the full 45M-row file fits in
memory as encoded arrays only. ``max_rows`` keeps the first rows of the file. The split is a
BARS-style seeded random 8:1:1 (per-line hash, see ``data.encoding.assign_splits``).
"""

from __future__ import annotations

from ..encoding import FieldSpec
from ..registry import register
from ..schema import Dataset
from .base import Source, load_source, resolve_file
from .text import read_blocks

INTEGER_COLUMNS = [f"I{i}" for i in range(1, 14)]
CATEGORICAL_COLUMNS = [f"C{i}" for i in range(1, 27)]
COLUMNS = ["label", *INTEGER_COLUMNS, *CATEGORICAL_COLUMNS]
FIELDS = [FieldSpec(c, "log_bucket") for c in INTEGER_COLUMNS] + [FieldSpec(c) for c in CATEGORICAL_COLUMNS]


@register("criteo")
def criteo(
    path: str | None = None,
    min_count: int = 10,
    hash_buckets: int | None = None,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    on_bad_rows: str = "error",
    max_rows: int | None = None,
) -> Dataset:
    """Criteo from ``path`` (or ``$CTRBENCH_CRITEO``); ``min_count=10`` as in BARS criteo_x1."""
    file = resolve_file(path, "CTRBENCH_CRITEO", "criteo")
    source = Source(
        "criteo", {file.name: file}, FIELDS, "label",
        lambda: read_blocks(file, columns=COLUMNS, sep="\t", header=False, max_records=max_rows),
        f"Criteo Kaggle text format ({file})", "first column (1 = click)",
    )
    return load_source(source, {"min_count": min_count, "hash_buckets": hash_buckets, "split": split,
                                "seed": seed, "on_bad_rows": on_bad_rows, "max_rows": max_rows})
