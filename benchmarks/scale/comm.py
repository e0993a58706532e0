"""What data parallelism costs in communication: ``python -m benchmarks.scale.comm``.

For each case, ``world_size`` gloo ranks (spawned here, one torch thread each) time:

- ``step_ms``: one DistributedDataParallel training step (``train_step``) on a global batch of ``batch``
  rows, each rank taking ``batch / world_size`` of them;
- ``compute_ms``: the same step under ``no_sync()`` (no gradient all-reduce);
- ``allreduce_ms``: ``dist.all_reduce`` of one flat float32 tensor as large as all gradients.

The all-reduce share of a step is ``1 - compute_ms / step_ms`` (what the step loses to communication
that DDP does not hide behind the backward pass); ``allreduce_ms / step_ms`` bounds it from above.
Cases: a DCN-V2 (parallel, 3 layers, the default config's preset) with one embedding table of
``rows`` rows at dim 16 split over 39 fields; the dense table's gradient is ``rows * 16 * 4`` bytes
every step, whatever the batch touches. ``sparse_allreduce_ms``: the all-reduce of the sparse
gradient a batch actually produces (its touched rows, as ``nn.Embedding(sparse=True)`` gives it),
the way past a dense table's all-reduce (with ``torch.optim.SparseAdam`` for those rows).

Writes ``<out>/scale_processes.json`` and ``<out>/scale_processes.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tabulate import tabulate

import data
import models
from data.atomic import write_text_atomically

from ..engine.distributed import Placement
from ..engine.environment import environment
from ..engine.latency import random_batch
from ..engine.runtime import make_optimizer
from ..engine.step import train_step
from ..engine.timing import median_ms
from ..harness.config import load_config

FIELDS = 39
EMBED_DIM = 16
PRESET = "DCN-V2 parallel, 3 layers"


def schema_of(rows: int) -> data.Schema:
    """39 fields sharing ``rows`` embedding rows (as evenly as they divide)."""
    sizes = [len(part) for part in torch.arange(rows).tensor_split(FIELDS)]
    return data.Schema([data.Field(f"f{i}", size) for i, size in enumerate(sizes)])


def _rank(rank: int, world_size: int, store: str, case: dict, result_file: str) -> None:
    torch.set_num_threads(case["threads"])
    if world_size > 1:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    placement = Placement(rank=rank, world_size=world_size)
    schema = schema_of(case["rows"])
    entry = load_config().select([PRESET]).entries[0]
    torch.manual_seed(0)
    net = placement.wrap(models.build(entry.model, schema, **(entry.hparams | {"dropout": 0.0})))
    optimizer = make_optimizer(net, 1e-3)
    x = random_batch(schema, case["batch"], seed=1).tensor_split(world_size)[rank]
    y = (torch.arange(len(x)) % 2).float()
    scale = placement.loss_scale(case["batch"])

    def step():
        train_step(net, optimizer, x, y, loss_scale=scale)

    out = {"step_ms": median_ms(step, 2, case["repeats"])}
    if world_size > 1:
        def compute():
            with net.no_sync():
                train_step(net, optimizer, x, y, loss_scale=scale)

        flat = torch.zeros(sum(p.numel() for p in net.parameters()))
        touched = x.unique()
        sparse = torch.sparse_coo_tensor(touched[None], torch.ones(len(touched), EMBED_DIM), (case["rows"], EMBED_DIM),
                                         check_invariants=False)
        out |= {"compute_ms": median_ms(compute, 1, case["repeats"]),
                "allreduce_ms": median_ms(lambda: dist.all_reduce(flat), 1, case["repeats"]),
                "sparse_allreduce_ms": median_ms(lambda: dist.all_reduce(sparse.clone()), 1, case["repeats"])}
    if rank == 0:
        Path(result_file).write_text(json.dumps(out))
    placement.leave()


def measure(case: dict) -> dict:
    """The timings of one case (``rows``, ``world_size``, ``threads`` per rank, ``batch``, ``repeats``)."""
    with tempfile.TemporaryDirectory() as tmp:
        store, result = os.path.join(tmp, "store"), os.path.join(tmp, "result.json")
        mp.spawn(_rank, args=(case["world_size"], store, case, result), nprocs=case["world_size"])
        timings = json.loads(Path(result).read_text())
    row = case | timings | {"samples_per_second": case["batch"] / timings["step_ms"] * 1e3}
    if "compute_ms" in timings:
        row["allreduce_share"] = max(0.0, 1 - timings["compute_ms"] / timings["step_ms"])
    return row


def takeover(rows: list[dict]) -> str:
    """The smallest measured table whose dense all-reduce costs more than the sparse one, in words."""
    ranked = sorted((r for r in rows if "allreduce_ms" in r), key=lambda r: r["rows"])
    over = [r for r in ranked if r["allreduce_ms"] > r["sparse_allreduce_ms"]]
    if not over:
        return "At every measured size the dense all-reduce cost no more than the sparse one."
    return (f"From {over[0]['rows']:,} rows on (of the sizes measured) the dense all-reduce "
            f"({over[0]['allreduce_ms']:.0f} ms) costs more than the sparse one "
            f"({over[0]['sparse_allreduce_ms']:.0f} ms); it grows with the table, the sparse one with the batch.")


def render(rows: list[dict], env: dict, load: str) -> str:
    """The processes section of results/scale.md."""
    def fmt(r, k, spec):
        return format(r[k], spec) if k in r else ""

    body = [[f"{r['rows']:,}", f"{r['world_size']} x {r['threads']}", r["batch"], fmt(r, "step_ms", ".1f"),
             fmt(r, "compute_ms", ".1f"), fmt(r, "allreduce_ms", ".1f"), fmt(r, "allreduce_share", ".0%"),
             fmt(r, "sparse_allreduce_ms", ".1f"), f"{r['samples_per_second']:,.0f}"] for r in rows]
    table = tabulate(body, headers=["table rows", "ranks x threads", "global batch", "step ms", "no-sync step ms",
                                    "dense all-reduce ms", "all-reduce share", "sparse all-reduce ms",
                                    "samples/s"], tablefmt="github", disable_numparse=True)
    return "\n".join([
        "## Processes: data parallel over gloo ranks",
        "",
        f"{PRESET} (dropout 0) with one embedding table of the given rows at dim {EMBED_DIM} over {FIELDS} fields; "
        f"{env['cpu']}, {env['cores']} cores, torch {env['torch']}, commit {env['git_commit']}; "
        f"load average when measured: {load}. Produced by `python -m benchmarks.scale.comm`.",
        "",
        table,
        "",
        f"- {takeover(rows)}",
        "- *step*: one DistributedDataParallel training step; *no-sync step*: the same without the gradient "
        "all-reduce; *all-reduce share* = 1 - no-sync / step; *dense all-reduce*: all gradients as one flat "
        "tensor; *sparse all-reduce*: only the embedding rows the batch touches (what `nn.Embedding(sparse=True)` "
        "produces).",
        "- A dense embedding gradient is all-reduced whole every step (rows x 16 x 4 bytes), whatever the batch "
        "touches: its cost grows with the table, as does dense Adam's update of every row (the no-sync step at "
        "10M rows); the forward and backward passes do not. The way past both: sparse gradients "
        "(`nn.Embedding(sparse=True)` with `torch.optim.SparseAdam` for the tables, Adam for the rest), whose "
        "all-reduce carries the touched rows only, or row-sharded tables (TorchRec's `ShardedEmbeddingBagCollection`: "
        "each rank owns a slice of the rows and exchanges looked-up vectors by all-to-all), for tables larger "
        "than one device's memory.",
        "",
    ])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale.comm", description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="100000,1000000,10000000", help="embedding table sizes (default: %(default)s)")
    p.add_argument("--batch", type=int, default=2048, help="global batch (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=5, help="timed steps per figure (default: %(default)s)")
    p.add_argument("--out", default="results", help="folder of the JSON and markdown (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        sizes = [int(v) for v in args.rows.split(",")]
    except ValueError:
        p.error(f"--rows takes comma-separated integers, got {args.rows!r}")
    if min(sizes) < FIELDS or args.batch < 2 or args.repeats < 1:
        p.error(f"--rows must be >= {FIELDS}, --batch >= 2, --repeats >= 1; got {args.rows}, {args.batch}, "
                f"{args.repeats}")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    rows = []
    for size in sizes:
        for world_size, threads in ((1, 2), (2, 1)):
            rows.append(measure({"rows": size, "world_size": world_size, "threads": threads, "batch": args.batch,
                                 "repeats": args.repeats}))
            print(json.dumps(rows[-1]), flush=True)
    load += " -> " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    env = environment(threads=2)
    out = Path(args.out)
    write_text_atomically(out / "scale_processes.json",
                          json.dumps({"environment": env, "load": load, "rows": rows}, indent=1) + "\n")
    write_text_atomically(out / "scale_processes.md", render(rows, env, load))
    print(f"wrote {out / 'scale_processes.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
