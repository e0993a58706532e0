"""The GPU check: ``python -m benchmarks.gpu_check --out DIR`` on a machine with CUDA.

1. ``python -m benchmarks.run --models fm,dcn_v2 --quick --device cuda`` (records under ``DIR/quick``);
2. with two or more GPUs: a 2-GPU DistributedDataParallel run (NCCL) against one GPU on the same
   global batches (largest parameter difference, test AUC of both);
3. the latency probe at batch 1 and 4096 for a few families, on the GPU and on the CPU.

Writes ``DIR/gpu_check.json`` and ``DIR/gpu_check.md``. On a machine without CUDA it says so,
writes the reason there, and exits 0. The equivalence run (:func:`train`, :func:`run_ranks`) is the
one the CPU tests use with gloo.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tabulate import tabulate

import data
import models
from data.atomic import write_text_atomically

from .engine.distributed import Placement, device_name, from_environment, resolve_device
from .engine.environment import environment
from .engine.fit import fit, predict
from .engine.latency import measure_latency
from .harness import cli
from .harness.records import load_records

# DCN-V2 without dropout and BatchNorm: per-rank dropout masks and (on CPU) per-rank BatchNorm statistics
# would differ from one process; train batches of 256 over 4,200 rows leave an uneven last batch.
EQUIVALENCE = {"rows": 6_000, "hparams": {"hidden_units": (32, 16), "dropout": 0.0, "batch_norm": False},
               "train": {"batch_size": 256, "max_epochs": 2, "lr": 3e-3, "eval_every": 10}}
FAMILIES = ("lr", "fm", "deepfm", "dcn_v2", "dcn_mix")
LATENCY_BATCHES = (1, 4096)


def train(placement: Placement, spec: dict = EQUIVALENCE) -> dict:
    """Fit the equivalence model of ``spec`` at ``placement``; its parameters (on CPU), history and test predictions."""
    dataset = data.load("synthetic", rows=spec["rows"])
    torch.manual_seed(0)
    model = models.build("dcn_v2", dataset.schema, **spec["hparams"])
    result = fit(model, dataset, seed=0, placement=placement, **spec["train"])
    prob = predict(model, dataset.test, batch_size=700, placement=placement)
    return {"state": {k: v.cpu() for k, v in model.state_dict().items()}, "history": result.history,
            "prob": prob, "test_auc": result.test_auc}


def _rank(rank: int, world_size: int, device: str, store: str, spec: dict, result: str) -> None:
    os.environ |= {"WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank)}
    torch.set_num_threads(1)
    if device == "cuda":
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if device == "cuda" else "gloo", init_method=f"file://{store}", rank=rank,
                            world_size=world_size)
    placement = from_environment(device)
    out = train(placement, spec)
    if rank == 0:
        torch.save(out, result)
    placement.leave()


def run_ranks(device: str, world_size: int, spec: dict = EQUIVALENCE) -> dict:
    """:func:`train` over ``world_size`` spawned ranks (gloo on CPU, NCCL on CUDA); rank 0's result."""
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "rank0.pt")
        mp.spawn(_rank, args=(world_size, device, os.path.join(tmp, "store"), spec, result), nprocs=world_size)
        return torch.load(result)


def equivalence(device: str, spec: dict = EQUIVALENCE) -> dict:
    """One process against 2 ranks on ``device``: largest parameter difference and both test AUCs."""
    one = train(Placement(resolve_device(device)), spec)
    two = run_ranks(device, 2, spec)
    diff = max(float((two["state"][k].float() - v.float()).abs().max()) for k, v in one["state"].items())
    return {"max_abs_param_diff": diff, "test_auc_1": one["test_auc"], "test_auc_2": two["test_auc"],
            "steps": one["history"][-1]["step"]}


def latencies(devices: list[str], families=FAMILIES, batches=LATENCY_BATCHES) -> list[dict]:
    """Median forward ms of each family (default hyperparameters, synthetic schema) on each device."""
    schema = data.load("synthetic", rows=20_000).schema
    rows = []
    for family in families:
        torch.manual_seed(0)
        model = models.build(family, schema)
        for device in devices:
            model = model.to(resolve_device(device))
            for b in batches:
                probe = measure_latency(model, schema, b)
                rows.append({"model": family, "device": probe["device"], "batch": b, "median_ms": probe["median_ms"],
                             "p90_ms": probe["p90_ms"]})
    return rows


def quick_run(out: Path) -> dict:
    """``--quick`` on CUDA; its exit code and, per record, AUCs, train samples/s and latencies."""
    code = cli.main(["--models", "fm,dcn_v2", "--quick", "--device", "cuda", "--out", str(out), "--quiet"])
    records = load_records(out / "quick")
    return {"exit_code": code, "records": [
        {"label": r["label"], "status": r["status"], "error": r.get("error"),
         **({"test_auc": r["metrics"]["test_auc"], "train_samples_per_second": r["train_samples_per_second"],
             "latency_ms": {b: v["median_ms"] for b, v in r["latency"].items()}} if r["status"] == "ok" else {})}
        for r in records]}


def render(summary: dict) -> str:
    lines = ["# GPU check", ""]
    if summary.get("skipped"):
        return "\n".join(lines + [f"Skipped: {summary['skipped']}", ""])
    env = summary["environment"]
    lines += [f"{summary['device']} ({summary['gpus']} GPU(s)); CPU {env['cpu']}, {env['cores']} cores; torch "
              f"{env['torch']}; commit {env['git_commit']}; {summary['seconds']:.0f} s.", "",
              f"## `--quick` on the GPU (exit code {summary['quick']['exit_code']})", "",
              tabulate([[r["label"], r["status"], r.get("test_auc", r.get("error")),
                         r.get("train_samples_per_second", ""), json.dumps(r.get("latency_ms", ""))]
                        for r in summary["quick"]["records"]],
                       headers=["entry", "status", "test AUC / error", "train samples/s", "latency ms"],
                       tablefmt="github"), "", "## 1 vs 2 GPUs (DDP, NCCL)", ""]
    eq = summary["equivalence"]
    lines += [json.dumps(eq) if isinstance(eq, dict) else str(eq), "", "## Latency probe, GPU vs CPU", "",
              tabulate([[r["model"], r["device"], r["batch"], f"{r['median_ms']:.3f}", f"{r['p90_ms']:.3f}"]
                        for r in summary["latency"]], headers=["model", "device", "batch", "median ms", "p90 ms"],
                       tablefmt="github"), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, metavar="DIR", help="folder of gpu_check.json and gpu_check.md")
    args = p.parse_args(argv)
    out = Path(args.out)
    if not torch.cuda.is_available():
        summary = {"skipped": f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False); "
                              "nothing was run"}
    else:
        start = time.perf_counter()
        gpus = torch.cuda.device_count()
        summary = {"device": device_name(torch.device("cuda", 0)), "gpus": gpus, "environment": environment(
            torch.get_num_threads()), "quick": quick_run(out)}
        summary["equivalence"] = equivalence("cuda") if gpus >= 2 else f"not run: {gpus} GPU (needs 2)"
        summary["latency"] = latencies(["cuda", "cpu"])
        summary["seconds"] = time.perf_counter() - start
    write_text_atomically(out / "gpu_check.json", json.dumps(summary, indent=1, default=str) + "\n")
    write_text_atomically(out / "gpu_check.md", render(summary))
    print(summary["skipped"] if "skipped" in summary else f"wrote {out / 'gpu_check.md'}",
          file=sys.stderr if "skipped" in summary else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
