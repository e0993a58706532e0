"""One measured step of the scale report, run in its own process; prints one JSON line.

``python -m benchmarks.scale.worker STEP --file PATH [--storage mmap|memory]`` with ``STEP``
``encode`` (first load into an empty cache), ``load`` (cached reload) or ``train`` (one epoch
of DCN-V2 parallel, 3 layers). Every step reports its wall seconds and the peak resident
memory of this process (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

import data
from benchmarks.engine.fit import fit
from benchmarks.engine.metrics import evaluate
from models import preset

MODEL = "DCN-V2 parallel, 3 layers"
BATCH_SIZE = 4096


def run(step: str, file: str, storage: str) -> dict:
    started = time.perf_counter()
    dataset = data.load("criteo", path=file, storage=storage)
    out = {"step": step, "storage": dataset.info["storage"], "cache": dataset.info["cache"],
           "rows": sum(dataset.sizes().values())}
    if step == "train":
        torch.manual_seed(0)
        result = fit(preset(MODEL).build(dataset.schema), dataset, batch_size=BATCH_SIZE, max_epochs=1, patience=1)
        out.update(samples_per_second=result.samples_per_second, train_seconds=result.train_seconds,
                   val_auc=result.best_val_auc, oracle_val_auc=evaluate(dataset.val.y, dataset.val.prob)["auc"])
    out.update(seconds=time.perf_counter() - started,
               peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale.worker")
    parser.add_argument("step", choices=("encode", "load", "train"))
    parser.add_argument("--file", required=True)
    parser.add_argument("--storage", default="mmap", choices=("mmap", "memory"))
    args = parser.parse_args(argv)
    print(json.dumps(run(args.step, args.file, args.storage)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
