"""The speed levers of ``fit``, each on and off per family, and ``fit``'s bf16 parity with fp32.

Every variant times :func:`benchmarks.engine.step.train_step` (or a forward call) in interleaved
blocks through :func:`benchmarks.engine.timing.interleaved_ms`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

import models
from data import Dataset, Features

from ..engine.fit import fit, predict
from ..engine.latency import inference_call
from ..engine.runtime import make_optimizer
from ..engine.step import train_step
from ..engine.timing import interleaved_ms
from .cases import CASES, Settings

VALUES_LEVER = "values per field (Features input)"  # same rows, every field also given a standard-normal value


def step_call(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str = "fp32", fused: bool = True,
              **adam) -> Callable[[], torch.Tensor]:
    """A no-argument training step of ``model`` on the fixed batch ``(x, y)`` with its own Adam (lr 1e-3)."""
    optimizer = make_optimizer(model, lr=1e-3, fused=fused, **adam)
    return lambda: train_step(model, optimizer, x, y, precision)


def measure_levers(dataset: Dataset, s: Settings, cases: list[str], log) -> list[dict]:
    """Each lever on and off, per family, side by side: ms per training step at batch 1024 (or as stated)."""
    rows: list[dict] = []
    x, y = dataset.train.features(slice(s.batch_size)), dataset.train.y[: s.batch_size]
    steps = s.lever_steps
    index_only = x if isinstance(x, torch.Tensor) else x.index
    with_values = Features(index_only, torch.randn(index_only.shape, generator=torch.Generator().manual_seed(s.seed)))

    def add(lever: str, case: str, timings: dict[str, float], off: str, on: str, note: str = ""):
        rows.append({"lever": lever, "case": case, "off": off, "on": on, "off_ms": timings[off],
                     "on_ms": timings[on], "speedup": timings[off] / timings[on], "note": note})
        log(f"  lever {lever:28s} {case:10s} {off} {timings[off]:.3f} ms -> {on} {timings[on]:.3f} ms")

    def fresh(case):
        torch.manual_seed(s.seed)
        return models.build(CASES[case].model, dataset.schema, **CASES[case].hparams)

    for case in cases:
        timings = interleaved_ms({"for-loop": step_call(fresh(case), x, y, fused=False, foreach=False),
                                  "foreach": step_call(fresh(case), x, y, fused=False, foreach=True),
                                  "fused": step_call(fresh(case), x, y)}, s.rounds, steps)
        add("Adam implementation", case, timings, "for-loop", "fused")
        add("Adam implementation", case, timings, "foreach", "fused")
        model = fresh(case)
        timings = interleaved_ms({"fp32": step_call(model, x, y),
                       "bf16": step_call(model, x, y, precision="bf16")}, s.rounds, steps)
        add("bf16 autocast (training)", case, timings, "fp32", "bf16")
        timings = interleaved_ms({"fp32": inference_call(model, dataset.schema, 4096),
                       "bf16": inference_call(model, dataset.schema, 4096, "bf16")}, s.rounds, 3)
        add("bf16 autocast (forward 4096)", case, timings, "fp32", "bf16")
        timings = interleaved_ms({"off": step_call(fresh(case), x, y),
                       "on": _flush_denormal(step_call(fresh(case), x, y))}, s.rounds, steps)
        add("flush denormals", case, timings, "off", "on")
        timings = interleaved_ms({"2 threads": _threads(s.threads, step_call(fresh(case), x, y)),
                       "1 thread": _threads(1, step_call(fresh(case), x, y))}, s.rounds, steps)
        add(f"1 thread instead of {s.threads}", case, timings, "2 threads", "1 thread")
        timings = interleaved_ms({"indices": step_call(fresh(case), index_only, y),
                                  "indices and values": step_call(fresh(case), with_values, y)}, s.rounds, steps)
        add(VALUES_LEVER, case, timings, "indices", "indices and values",
            "the cost of the value per field (issue 17: at least 0.95)")
    for case in (c for c in s.compile_cases if c in cases):
        rows.extend(_compile_lever(case, fresh, x, y, s, steps, log))
    case = "dcn_v2" if "dcn_v2" in cases else cases[0]
    model = fresh(case)
    sizes = (1024, 4096, 16384, 65536)
    timings = interleaved_ms({f"batch {b}": (lambda b=b: predict(model, dataset.val, b)) for b in sizes}, s.rounds, 1)
    add("evaluation batch size", case, timings, "batch 16384", "batch 4096",
        f"ms to score the validation split ({len(dataset.val)} rows); "
        + ", ".join(f"batch {b}: {timings[f'batch {b}']:.1f}" for b in sizes))
    return rows


def _flush_denormal(fn):
    def call():
        torch.set_flush_denormal(True)
        try:
            fn()
        finally:
            torch.set_flush_denormal(False)

    return call


def _threads(n: int, fn):
    def call():
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            fn()
        finally:
            torch.set_num_threads(before)

    return call


def _compile_lever(case: str, fresh: Callable[[str], torch.nn.Module], x, y, s: Settings, steps: int,
                   log) -> list[dict]:
    """Training step ms of ``case`` eager and under ``torch.compile`` (inductor), with the compile time."""
    eager, compiled = fresh(case), fresh(case)
    start = time.perf_counter()
    compiled_step = step_call(torch.compile(compiled), x, y)
    compiled_step()
    seconds = time.perf_counter() - start
    timings = interleaved_ms({"eager": step_call(eager, x, y), "torch.compile": compiled_step}, s.rounds, steps)
    log(f"  lever torch.compile {case}: compile {seconds:.1f} s, {timings}")
    return [{"lever": "torch.compile (inductor)", "case": case, "off": "eager", "on": "torch.compile",
             "off_ms": timings["eager"], "on_ms": timings["torch.compile"],
             "speedup": timings["eager"] / timings["torch.compile"], "note": f"compile time {seconds:.1f} s"}]


def bf16_parity(dataset: Dataset, s: Settings, cases, log) -> list[dict]:
    """``fit`` with fp32 and with bf16 autocast, alternating, over ``s.parity_seeds`` seeds: validation AUC
    after ``s.epochs`` per seed, and the best end-to-end samples/s."""
    out = []
    for case in cases:
        runs = {p: {"auc": [], "samples_per_s": 0.0} for p in ("fp32", "bf16")}
        for seed in range(s.parity_seeds):
            for precision, entry in runs.items():
                torch.manual_seed(seed)
                model = models.build(CASES[case].model, dataset.schema, **CASES[case].hparams)
                result = fit(model, dataset, batch_size=s.batch_size, max_epochs=s.epochs, patience=s.epochs + 1,
                             seed=seed, precision=precision)
                entry["auc"].append(result.history[-1]["val_auc"])
                rate = len(dataset.train) * s.epochs / result.train_seconds
                entry["samples_per_s"] = max(entry["samples_per_s"], rate)
        out.append({"case": case, "fp32_auc": runs["fp32"]["auc"], "bf16_auc": runs["bf16"]["auc"],
                    "fp32_samples_per_s": runs["fp32"]["samples_per_s"],
                    "bf16_samples_per_s": runs["bf16"]["samples_per_s"]})
        log(f"  bf16 parity {case}: {out[-1]}")
    return out
