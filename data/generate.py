"""Criteo- and Avazu-format files drawn from a planted click model with a known truth.

``python -m data.generate table --rows N --columns C --out PATH`` writes a numeric CSV instead:
a 0/1 ``label`` and ``C`` numeric columns ``x0 ..`` (see ``generate_table``), for load-speed runs.

``python -m data.generate criteo --rows N --out PATH [--seed S]`` (or ``avazu``) writes ``PATH``
in the real raw format (Criteo: tab-separated, no header, label, 13 integers, 26 hashed
categories; Avazu: CSV with its header, ``id``, ``click``, ``hour`` and 21 categories) and
``PATH.prob.npy``, the true click probability of every data row (float32, row ``i`` of the
file is entry ``i``), which the ``criteo`` and ``avazu`` loaders pick up so the leaderboard's
oracle row works on these files.

The click model: a categorical field ``f`` with vocabulary ``V_f`` draws value ``k`` with
probability ``log((k + 2) / (k + 1)) / log(V_f + 1)``, about ``1 / (k + 1)`` (Zipf, exponent 1),
by ``k = floor((V_f + 1) ** u) - 1`` for uniform ``u``; vocabularies run from 3 to 10M as in
the real data sets. Integer columns are ``floor(exp(N(mu, sigma)))`` with a per-column missing
rate. The true logit is

    logit = b + sum_f a * g(f, v_f) + sum_{(f,g) in P} c * g(fg, min(v_f, K), min(v_g, K))
              + sum_{(f,g,h) in T} d * g(fgh, min(v_f, K3), min(v_g, K3), min(v_h, K3))

where ``g`` is a standard-normal-like effect computed from a 64-bit hash of its arguments (so
no table of 10M effects is held), ``v_f`` is the value of field ``f`` (an integer column's
value is its log bucket, a missing value has its own code), ``P`` and ``T`` are fixed field
pairs and triples, and ``b`` is set on a calibration sample so that the mean probability is
the real positive rate (Criteo 0.26, Avazu 0.17). Labels are Bernoulli draws. Rows are
drawn in chunks from generators seeded by ``(seed, chunk)``, so a file is a function of its
seed and row count.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from numpy.lib.format import open_memmap

from .atomic import write_atomically

CHUNK_ROWS = 1 << 19
PAIR_CAP, TRIPLE_CAP = 1000, 50
FIRST_ORDER, PAIR_STRENGTH, TRIPLE_STRENGTH = 0.25, 0.35, 0.45
_HEX_PAIRS = np.array([int.from_bytes(f"{b:02x}".encode(), "little") for b in range(256)], np.uint16)
_CALIBRATION_ROWS = 1 << 17


@dataclass(frozen=True)
class Column:
    """One raw column: ``kind`` is ``hex`` (8 hex digits), ``code`` (an integer category) or
    ``count`` (an integer feature); ``size`` is the vocabulary (``code``/``hex``) or, for
    ``count``, ``(mu, sigma)`` of the log-normal; ``missing`` the share of empty values."""

    name: str
    kind: str
    size: int | tuple[float, float]
    missing: float = 0.0
    base: int = 0


@dataclass(frozen=True)
class Format:
    """A raw format: its columns in file order, separator, header, label name, positive rate,
    planted pairs and triples (by column name)."""

    label: str
    columns: tuple[Column, ...]
    sep: str
    header: bool
    positive_rate: float
    pairs: tuple[tuple[str, str], ...]
    triples: tuple[tuple[str, str, str], ...]


_CRITEO_COUNTS = [(0.7, 1.2, 0.45), (1.5, 1.8, 0.0), (1.8, 1.5, 0.21), (1.6, 1.0, 0.22), (7.0, 2.0, 0.03),
                  (3.5, 1.8, 0.22), (1.5, 1.6, 0.04), (2.5, 1.0, 0.0), (3.8, 1.5, 0.04), (0.3, 0.5, 0.45),
                  (0.8, 1.0, 0.04), (0.3, 1.0, 0.76), (1.8, 1.2, 0.22)]
_CRITEO_VOCABS = [1460, 583, 10_131_227, 2_202_608, 305, 24, 12517, 633, 3, 93145, 5683, 8_351_593, 3194,
                  27, 14992, 5_461_306, 10, 5652, 2173, 4, 7_046_547, 18, 15, 286_181, 105, 142_572]
_CRITEO_MISSING = [0, 0, 0.03, 0.03, 0, 0.12, 0, 0, 0, 0, 0, 0.03, 0, 0, 0, 0.03, 0, 0, 0.44, 0.44,
                   0.03, 0.76, 0, 0.03, 0.44, 0.44]
CRITEO = Format(
    "label",
    tuple(Column(f"I{i + 1}", "count", (mu, sd), miss) for i, (mu, sd, miss) in enumerate(_CRITEO_COUNTS))
    + tuple(Column(f"C{i + 1}", "hex", v, m)
            for i, (v, m) in enumerate(zip(_CRITEO_VOCABS, _CRITEO_MISSING, strict=True))),
    "\t", False, 0.26,
    (("I1", "C6"), ("C1", "C2"), ("C5", "C9"), ("I5", "C14"), ("C7", "C17"), ("C8", "C20"), ("I3", "I9"),
     ("C11", "C23"), ("C13", "C25"), ("I11", "C22")),
    (("C6", "C9", "C17"), ("I1", "C14", "C20"), ("C2", "C23", "C25")),
)
_AVAZU_CATEGORIES = [
    ("C1", "code", 7, 1001), ("banner_pos", "code", 7, 0), ("site_id", "hex", 4737), ("site_domain", "hex", 7745),
    ("site_category", "hex", 26), ("app_id", "hex", 8552), ("app_domain", "hex", 559), ("app_category", "hex", 36),
    ("device_id", "hex", 2_686_408), ("device_ip", "hex", 6_729_486), ("device_model", "hex", 8251),
    ("device_type", "code", 5, 0), ("device_conn_type", "code", 4, 0), ("C14", "code", 2626, 375),
    ("C15", "code", 8, 120), ("C16", "code", 9, 20), ("C17", "code", 435, 112), ("C18", "code", 4, 0),
    ("C19", "code", 68, 33), ("C20", "code", 172, 100000), ("C21", "code", 60, 1),
]
AVAZU = Format(
    "click",
    (Column("id", "id", 0), Column("click", "label", 2), Column("hour", "hour", 240))
    + tuple(Column(name, kind, size, 0.0, base[0] if base else 0) for name, kind, size, *base in _AVAZU_CATEGORIES),
    ",", True, 0.17,
    (("banner_pos", "site_category"), ("app_category", "device_type"), ("C1", "C15"), ("site_id", "C16"),
     ("C18", "device_conn_type"), ("C14", "C21"), ("app_id", "C19"), ("hour", "C17")),
    (("banner_pos", "device_type", "C18"), ("site_category", "app_category", "C15")),
)
FORMATS = {"criteo": CRITEO, "avazu": AVAZU}


def generate(name: str, rows: int, out: Path, seed: int = 0) -> None:
    """Write ``rows`` rows of format ``name`` to ``out`` and their probabilities to ``out.prob.npy``."""
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; expected one of {sorted(FORMATS)}")
    if not isinstance(rows, int) or rows < 1:
        raise ValueError(f"rows must be an integer >= 1, got {rows!r}")
    fmt = FORMATS[name]
    bias = _bias(fmt, seed)
    draw = lambda start: _chunk(fmt, np.random.default_rng([seed, start // CHUNK_ROWS]),  # noqa: E731
                                min(CHUNK_ROWS, rows - start), start, rows, bias)
    _write(out, rows, draw, fmt.sep, fmt.sep.join(c.name for c in fmt.columns) + "\n" if fmt.header else None)


def generate_table(rows: int, columns: int, out: Path, seed: int = 0) -> None:
    """A numeric CSV: ``label`` and ``columns`` columns ``x<j>`` (4 decimals), column ``j`` a normal
    (even ``j``) or log-normal (odd ``j``) draw with 1% empty cells; ``label`` is Bernoulli of
    ``sigmoid(sum_j w_j z_j - 1)``, ``z_j`` the standardised draw, ``w_j ~ N(0, 1 / columns)``.
    Truth is written to ``out.prob.npy`` as for the other formats."""
    for name, value in (("rows", rows), ("columns", columns)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    weights = np.random.default_rng([seed, 1 << 41]).normal(0, columns ** -0.5, columns)
    names = ["label", *(f"x{j}" for j in range(columns))]

    def draw(start: int):
        rng = np.random.default_rng([seed, start // CHUNK_ROWS])
        n = min(CHUNK_ROWS, rows - start)
        z = rng.normal(0, 1, (n, columns))
        prob = 1 / (1 + np.exp(-(z @ weights - 1)))
        raw = np.where(np.arange(columns) % 2, np.exp(z), z).round(4)
        missing = rng.random((n, columns)) < 0.01
        arrays = [pa.array((rng.random(n) < prob).astype(np.int8))]
        arrays += [pa.array(raw[:, j], mask=missing[:, j]) for j in range(columns)]
        return pa.table(arrays, names=names), prob.astype(np.float32)

    _write(out, rows, draw, ",", ",".join(names) + "\n")


def _write(out: Path, rows: int, draw, sep: str, header: str | None) -> None:
    """Write the tables ``draw(start)`` of every chunk to ``out`` and their probabilities to
    ``out.prob.npy``, both atomically, in order; as many chunks as there are cores are drawn
    ahead in threads (numpy and arrow release the GIL) while this one is written."""
    out = Path(out)
    workers = os.cpu_count() or 1

    def write_file(staged: Path) -> None:
        def write_prob(staged_prob: Path) -> None:
            prob = open_memmap(staged_prob, mode="w+", dtype=np.float32, shape=(rows,))
            options = pacsv.WriteOptions(include_header=False, delimiter=sep, quoting_style="none")
            starts = iter(range(0, rows, CHUNK_ROWS))
            with pa.OSFile(str(staged), "wb") as sink, ThreadPoolExecutor(workers) as pool:
                if header:
                    sink.write(header.encode())
                ahead = deque((start, pool.submit(draw, start)) for start in itertools.islice(starts, workers))
                while ahead:
                    start, drawn = ahead.popleft()
                    table, p = drawn.result()
                    ahead.extend((s, pool.submit(draw, s)) for s in itertools.islice(starts, 1))
                    pacsv.write_csv(table, sink, options)
                    prob[start : start + len(p)] = p
            prob.flush()

        write_atomically(Path(str(out) + ".prob.npy"), write_prob)

    write_atomically(out, write_file)


def _chunk(fmt: Format, rng: np.random.Generator, n: int, start: int, total: int, bias: float):
    """One chunk: the arrow table of raw columns and the true probabilities ``[n]``."""
    codes, arrays = {}, {}
    for column in fmt.columns:
        if column.kind in ("label", "id"):
            continue
        code, array = _draw(column, rng, n, start, total)
        codes[column.name], arrays[column.name] = code, array
    prob = _probability(fmt, codes, bias)
    label = (rng.random(n) < prob).astype(np.int8)
    arrays[fmt.label] = pa.array(label)
    if "id" in {c.kind for c in fmt.columns}:
        arrays["id"] = pa.array(rng.integers(0, np.iinfo(np.int64).max, n, dtype=np.int64).astype(np.uint64))
    names = [c.name for c in fmt.columns]
    if not any(c.kind == "label" for c in fmt.columns):
        names = [fmt.label, *names]
    return pa.table({name: arrays[name] for name in names}), prob.astype(np.float32)


def _draw(column: Column, rng: np.random.Generator, n: int, start: int, total: int):
    """``(code, arrow array)``: the code the click model sees, and the raw text column."""
    missing = rng.random(n) < column.missing if column.missing else None
    if column.kind == "hour":
        code = (np.arange(start, start + n, dtype=np.int64) * column.size // total)
        day, hour = np.divmod(code, 24)
        return code, pa.array(14102100 + day * 100 + hour)
    if column.kind == "count":
        mu, sigma = column.size
        value = np.floor(np.exp(rng.normal(mu, sigma, n))).astype(np.int64) - 1
        code = np.floor(np.log(np.maximum(value, 0) + 2) ** 2).astype(np.int64)
        code = np.where(missing, -1, code) if missing is not None else code
        return code, pa.array(value, mask=missing)
    code = np.floor(np.exp(rng.random(n) * np.log(column.size + 1.0))).astype(np.int64) - 1
    code = np.minimum(code, column.size - 1)
    if column.kind == "code":
        array = pa.array(column.base + code)
    else:
        array = _hex_strings(_mix(code.astype(np.uint64) ^ _salt(column.name)).astype(np.uint32), missing)
    if missing is not None:
        code = np.where(missing, -1, code)
    return code, array


def _hex_strings(values: np.ndarray, missing: np.ndarray | None) -> pa.Array:
    """8-digit lower-case hex of ``values`` (uint32) as an arrow string array, built from buffers."""
    digits = _HEX_PAIRS[values.astype(">u4").view(np.uint8).reshape(-1, 4)]
    n = len(values)
    offsets = pa.py_buffer(np.arange(0, 8 * n + 1, 8, dtype=np.int32))
    validity = None if missing is None else pa.py_buffer(np.packbits(~missing, bitorder="little"))
    nulls = 0 if missing is None else int(missing.sum())
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(np.ascontiguousarray(digits)), validity, nulls)


def _probability(fmt: Format, codes: dict[str, np.ndarray], bias: float) -> np.ndarray:
    logit = np.full(len(next(iter(codes.values()))), bias)
    for name, code in codes.items():
        logit += FIRST_ORDER * _effect(_salt(name), code)
    for combo, cap, strength in [(c, PAIR_CAP, PAIR_STRENGTH) for c in fmt.pairs] + \
                                [(c, TRIPLE_CAP, TRIPLE_STRENGTH) for c in fmt.triples]:
        key = np.zeros_like(logit, dtype=np.uint64)
        for name in combo:
            key = key * np.uint64(cap + 2) + (np.minimum(codes[name], cap) + 1).astype(np.uint64)
        logit += strength * _effect(_salt("*".join(combo)), key)
    return 1.0 / (1.0 + np.exp(-logit))


def _effect(salt: np.uint64, key: np.ndarray) -> np.ndarray:
    """A standard-normal-like effect per key: the sum of four 16-bit uniforms of its hash, scaled."""
    h = _mix(key.astype(np.uint64) ^ salt)
    total = sum(((h >> np.uint64(s)) & np.uint64(0xFFFF)).astype(np.float64) for s in (0, 16, 32, 48))
    return (total / 65535.0 - 2.0) * np.sqrt(3.0)


def _bias(fmt: Format, seed: int) -> float:
    """``b`` such that the mean probability of a calibration sample is ``fmt.positive_rate``."""
    rng = np.random.default_rng([seed, 1 << 40])
    codes = {c.name: _draw(c, rng, _CALIBRATION_ROWS, 0, _CALIBRATION_ROWS)[0]
             for c in fmt.columns if c.kind not in ("label", "id")}
    logit = np.log(_probability(fmt, codes, 0.0)) - np.log1p(-_probability(fmt, codes, 0.0))
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.mean(1 / (1 + np.exp(-(logit + mid)))) < fmt.positive_rate else (lo, mid)
    return (lo + hi) / 2


def _salt(name: str) -> np.uint64:
    return _mix(np.frombuffer(name.encode().ljust(8 * (len(name) // 8 + 1), b"\0"), np.uint64)).sum(
        dtype=np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a 64-bit hash of each entry."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("format", choices=[*sorted(FORMATS), "table"])
    parser.add_argument("--columns", type=int, default=100, help="numeric columns (format table only)")
    parser.add_argument("--rows", type=int, required=True, help="data rows to write")
    parser.add_argument("--out", type=Path, required=True, help="the file to write (and OUT.prob.npy)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows must be >= 1, got {args.rows}")
    started = time.perf_counter()
    if args.format == "table":
        generate_table(args.rows, args.columns, args.out, args.seed)
    else:
        generate(args.format, args.rows, args.out, args.seed)
    seconds = time.perf_counter() - started
    print(f"{args.out}: {args.rows} rows in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
