"""``python -m benchmarks.scale [--sizes 1M,5M,20M,45M] [--work DIR] [--out results] [--redo-encode]``.

For each size not yet measured (with ``--redo-encode``, also for those measured: only the encode and
the cached load again, the record keeping its training figures and saying which were re-measured when,
under ``remeasured``): generate the Criteo-format file, run each step in a fresh
worker process (encode into an empty cache, cached load, one training epoch from the memory
map, and in memory when the arrays fit in half the available memory), write
``<work>/<rows>.json`` atomically, and delete the file and its cache unless ``--keep``.
Then render ``<out>/scale.md`` and ``<out>/scale.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.engine.environment import environment
from data.atomic import write_atomically
from data.cache import cache_root

from .report import render

SIZES = {"1M": 1_000_000, "5M": 5_000_000, "20M": 20_000_000, "45M": 45_000_000}
IN_MEMORY_BYTES_PER_ROW = 39 * 8 * 2  # int64 indices, plus the shuffled copy of an epoch


def measure(rows: int, work: Path, keep: bool, say, redo: dict | None = None) -> dict:
    """Every figure of one size (see the module docstring); with ``redo`` (an earlier record of this
    size), only the encode and the cached load, kept in ``redo`` beside its other figures."""
    file = work / f"criteo-{rows}.txt"
    cache = work / f"cache-{rows}"
    shutil.rmtree(cache, ignore_errors=True)
    record = {"rows": rows, "load_average_before": os.getloadavg()}
    if not file.exists():
        say(f"{rows:,} rows: generating {file}")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "data.generate", "criteo", "--rows", str(rows), "--out", str(file)],
                       check=True)
        record["generate_seconds"] = time.perf_counter() - started
    record["file_bytes"] = file.stat().st_size
    env = {**os.environ, "CTRBENCH_CACHE": str(cache)}
    steps = [("encode", "mmap"), ("load", "mmap")]
    if redo is None:
        steps.append(("train", "mmap"))
        if rows * IN_MEMORY_BYTES_PER_ROW < _available_memory() / 2:
            steps.append(("train", "memory"))
    for step, storage in steps:
        say(f"{rows:,} rows: {step} ({storage})")
        done = subprocess.run([sys.executable, "-m", "benchmarks.scale.worker", step, "--file", str(file),
                               "--storage", storage], env=env, check=True, capture_output=True, text=True)
        record[f"{step}_{storage}"] = json.loads(done.stdout.strip().splitlines()[-1])
    record["cache_bytes"] = sum(p.stat().st_size for p in (cache / "processed").rglob("*") if p.is_file())
    record["load_average_after"] = os.getloadavg()
    record["environment"] = environment(threads=os.cpu_count() or 1)
    if not keep:
        shutil.rmtree(cache, ignore_errors=True)
        file.unlink()
        Path(str(file) + ".prob.npy").unlink()
    if redo is None:
        return record
    again = [k for k in ("generate_seconds", "encode_mmap", "load_mmap", "cache_bytes") if k in record]
    remeasured = {k: record[k] for k in ("load_average_before", "load_average_after", "environment")}
    return {**redo, **{k: record[k] for k in again}, "remeasured": {**remeasured, "figures": again}}


def _available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help=f"comma-separated, of {list(SIZES)} or numbers of rows")
    parser.add_argument("--work", type=Path, default=None, help="files, caches and per-size JSON "
                        "(default: <cache>/scale)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="where scale.md and scale.png go")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and caches")
    parser.add_argument("--redo-encode", action="store_true",
                        help="for sizes measured already, measure the encode and the cached load again (after a "
                             "change of the data layer), keeping their training figures")
    args = parser.parse_args(argv)
    unknown = [s for s in args.sizes.split(",") if s not in SIZES and not s.isdigit()]
    if unknown:
        parser.error(f"--sizes: unknown size(s) {unknown}; accepted: {list(SIZES)} or a number of rows")
    work = args.work or cache_root() / "scale"
    work.mkdir(parents=True, exist_ok=True)
    for size in args.sizes.split(","):
        rows = SIZES.get(size) or int(size)
        path = work / f"{rows}.json"
        earlier = json.loads(path.read_text()) if path.exists() else None
        if earlier and not args.redo_encode:
            print(f"{size}: measured already ({path})", flush=True)
            continue
        record = measure(rows, work, args.keep, lambda text: print(text, flush=True), redo=earlier)
        write_atomically(path, lambda staged, record=record: staged.write_text(json.dumps(record, indent=1)))
    render(work, args.out)
    print(f"wrote {args.out / 'scale.md'} and {args.out / 'scale.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
