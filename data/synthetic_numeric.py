"""``synthetic-numeric``: a planted click model on numeric and categorical columns, to measure
what cutting numbers into bins loses.

Rows are drawn (seeded, embedded: no download) into a Parquet table and its true probabilities
(``<table>.prob.npy``) under ``<cache>/raw/synthetic-numeric/rows<N>-seed<S>/``, which then go
through the same pipeline as ``data.load("table", ...)``: the split (a seeded hash of the row
number), the audit and the cache. ``numeric_as="value"`` (the default) keeps the seven numbers
as values, ``numeric_as="bins"`` cuts them into ``num_bins`` (10) quantile bins; both read the
same rows, so the two give the same labels and splits row for row (a paired comparison), and
``Split.prob`` holds the oracle. Columns and the true logit:

* ``smooth`` ~ U(-3, 3): ``0.6 sin(1.5 x)``;
* ``quadratic`` ~ N(0, 1): ``-0.4 x^2``;
* ``spend`` ~ Exp(1), missing in 10% of rows: ``0.9 x`` when present, ``-0.3`` when missing;
* ``threshold`` ~ U(0, 100): ``+1.5`` above 95 (inside the top decile bin, so bins blur it);
* ``slope`` ~ N(0, 1) times a slope set by the ``segment`` category: ``s[segment] x`` with
  ``s = (-1.5, -0.5, 0.6, 1.6)``;
* ``pair_a``, ``pair_b`` ~ N(0, 1): ``1.0 a b``;
* categorical ``segment`` (4 values), ``region`` (10), ``device`` (5), uniform, each with
  first-order effects ~ N(0, 0.3^2) drawn once per seed;

plus a bias set so that the mean click probability is ``POSITIVE_RATE``. Labels are Bernoulli draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .atomic import write_atomically
from .cache import raw_dir
from .encoding import FieldSpec
from .numeric_options import NumericOptions
from .pipeline import load_source
from .raw import Source
from .registry import register
from .schema import Dataset
from .sources.table import parquet_chunks
from .synthetic import bias_for_rate

NUMERIC = ("smooth", "quadratic", "spend", "threshold", "slope", "pair_a", "pair_b")
CATEGORICAL = {"segment": 4, "region": 10, "device": 5}
SLOPES = np.array([-1.5, -0.5, 0.6, 1.6])
POSITIVE_RATE = 0.2
TABLE = "table.parquet"


@dataclass(frozen=True)
class SyntheticNumericOptions(NumericOptions):
    """``NumericOptions``; ``rows`` is the number of rows drawn (every one is loaded), ``seed``
    seeds both the draw and the split; there is no ``path``."""

    rows: int | None = 100_000  # 80k training rows: 320 steps of 2048 in the default 8 epochs
    numeric_as: str | int | dict = "value"

    def check(self, dataset: str) -> None:
        if self.path is not None:
            raise ValueError(f"{dataset}: the rows are drawn, not read; path must be None, got {self.path!r}")
        if not isinstance(self.rows, int) or self.rows < 100:
            raise ValueError(f"{dataset}: rows must be an integer >= 100, got {self.rows!r}")
        super().check(dataset)


@register("synthetic-numeric", SyntheticNumericOptions)
def synthetic_numeric(options: SyntheticNumericOptions) -> Dataset:
    """The planted numeric click model (see the module), numbers as values or bins."""
    fields = [FieldSpec(c) for c in CATEGORICAL] + options.specs("synthetic-numeric", NUMERIC)
    file = table_file(options.rows, options.seed)
    columns = ["click", *CATEGORICAL, *NUMERIC]
    source = Source("synthetic-numeric", {TABLE: file}, fields, "click",
                    lambda: parquet_chunks(file, columns, None),
                    f"planted numeric click model ({options.rows} rows, seed {options.seed}; embedded)",
                    "Bernoulli(true probability)", file.with_name(TABLE + ".prob.npy"))
    return load_source(source, options)


def table_file(rows: int, seed: int) -> Path:
    """The drawn table of ``rows`` rows for ``seed``, written (with its ``.prob.npy``) if absent."""
    folder = raw_dir("synthetic-numeric") / f"rows{rows}-seed{seed}"
    if not folder.is_dir():
        def write(staged: Path) -> None:
            staged.mkdir()
            table, prob = draw(rows, seed)
            pq.write_table(table, staged / TABLE)
            np.save(staged / (TABLE + ".prob.npy"), prob)

        write_atomically(folder, write)
    return folder / TABLE


def draw(rows: int, seed: int) -> tuple[pa.Table, np.ndarray]:
    """``(table, prob)``: the raw columns and label of ``rows`` rows, and their true probabilities (float32)."""
    rng = np.random.default_rng([seed, 0x5EED])
    cats = {name: rng.integers(0, size, rows) for name, size in CATEGORICAL.items()}
    x = {"smooth": rng.uniform(-3, 3, rows), "quadratic": rng.normal(0, 1, rows), "spend": rng.exponential(1, rows),
         "threshold": rng.uniform(0, 100, rows), "slope": rng.normal(0, 1, rows), "pair_a": rng.normal(0, 1, rows),
         "pair_b": rng.normal(0, 1, rows)}
    missing = rng.random(rows) < 0.1
    logit = (0.6 * np.sin(1.5 * x["smooth"]) - 0.4 * x["quadratic"] ** 2 + np.where(missing, -0.3, 0.9 * x["spend"])
             + 1.5 * (x["threshold"] > 95) + SLOPES[cats["segment"]] * x["slope"] + x["pair_a"] * x["pair_b"])
    for name, size in CATEGORICAL.items():
        logit += rng.normal(0, 0.3, size)[cats[name]]
    prob = _sigmoid(logit + bias_for_rate(torch.from_numpy(logit), POSITIVE_RATE))
    label = (rng.random(rows) < prob).astype(np.int8)
    x["spend"] = np.where(missing, np.nan, x["spend"])
    columns = {"click": label, **{k: [f"{k[0]}{v}" for v in c] for k, c in cats.items()}, **x}
    return pa.table(columns), prob.astype(np.float32)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))
