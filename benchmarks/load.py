"""Load speed of the pipeline: ``python -m benchmarks.load PATH [--columns C] [--numeric-as value|bins]``.

Loads a numeric CSV written by ``python -m data.generate table`` (a ``label`` and columns
``x0 .. x<C-1>``) through ``data.load("table", ...)`` into a fresh temporary cache (so every run
is a cache miss: both streaming passes, encoding and writing), and prints the rows per second
(data rows / wall seconds of the load), the wall seconds and the peak resident memory of the
process. Nothing is written outside the temporary folder.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import data
from data.sources.text import read_header


def measure(path: Path, numeric_as: str) -> dict:
    """Load ``path`` once into a temporary cache; rows, seconds, rows/s and peak RSS (MiB)."""
    numeric = [c for c in read_header(path, sep=",") if c != "label"]
    with tempfile.TemporaryDirectory() as cache:
        os.environ["CTRBENCH_CACHE"] = cache
        started = time.perf_counter()
        d = data.load("table", path=str(path), numeric=numeric, numeric_as=numeric_as, storage="mmap")
        seconds = time.perf_counter() - started
    rows = sum(d.info["rows"].values())
    return {"rows": rows, "columns": len(numeric), "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="a CSV from `python -m data.generate table`")
    parser.add_argument("--numeric-as", choices=["value", "bins"], default="value")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        parser.error(f"no file {args.path}")
    print(measure(args.path, args.numeric_as))
    return 0


if __name__ == "__main__":
    sys.exit(main())
