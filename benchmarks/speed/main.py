"""The speed report's run and command line: every family against its peer implementations, side by side.

    python -m benchmarks.speed              # results/speed.md + results/speed.json (several minutes)
    python -m benchmarks.speed --quick      # small data, one round: checks the machinery in seconds

For each family at one common architecture (:data:`ARCH`) it measures first the training seconds
ours and each peer need to reach a common validation AUC (``benchmarks.speed.quality``), then, interleaved so that
machine drift hits everyone alike: training samples/s through ``fit`` and through a bare loop
over the same model, the peers' samples/s (the same bare loop, and their own ``fit`` where they
have one) and validation AUC after the same epochs, forward latency at batch 1 and 4096, peak
training memory (in a fresh process each), FLOPs per sample and the fraction of the measured
matrix-multiply roofline reached. Then one factor at a time of ours on DCN-V2 (what makes the first epochs
slower: ``benchmarks.speed.factors``) and profiles of the training steps behind the unmet targets. A last
section measures the speed levers of ``fit``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

import data
from data.atomic import write_text_atomically

from ..engine import contention
from ..engine.environment import cpu_has_bf16, environment
from . import peers as peer_registry
from .cases import ARCH, CASES, QUICK, Settings
from .factors import FACTOR_CASE
from .levers import bf16_parity, measure_levers
from .measure import (
    built,
    execute,
    flops_per_sample,
    implementations,
    matmul_rate,
    measure_case,
    measure_factors,
    measure_profiles,
    measure_quality,
)
from .render import write
from .workers import Worker, probe, run_probe

RESUMABLE_IF_EQUAL = ("git_commit", "torch", "cpu", "threads")  # and the settings: a checkpoint of the same code


def run(s: Settings, cases: list[str], log=print, checkpoint: Path | None = None) -> dict:
    """Every measurement of the report, as one JSON-able dict (see :func:`benchmarks.speed.render.render`).

    ``checkpoint``: the report so far is saved there (atomically) after each family and section, and a run
    with the same settings, families and clean commit resumes from it instead of measuring again; deleted by
    the caller once the report is written."""
    torch.set_num_threads(s.threads)
    started = time.perf_counter()
    dataset = data.load("synthetic", rows=s.rows)
    available = peer_registry.installed() if s.peers else {}
    report = {"settings": {**asdict(s), "cases": cases, "arch": ARCH},
              "environment": environment(s.threads) | {"peers": available if s.peers else None},
              "roofline_gflops": {"fp32": matmul_rate(torch.float32)}, "cases": {}}
    if cpu_has_bf16():
        report["roofline_gflops"]["bf16"] = matmul_rate(torch.bfloat16)
    report = resume(report, checkpoint, log)
    before = report.get("seconds", 0.0)

    def save():
        report["seconds"] = before + time.perf_counter() - started
        if checkpoint is not None:
            write_text_atomically(checkpoint, json.dumps(report, default=str) + "\n")

    worker = Worker(s, available)
    try:
        for case in cases:
            if case in report["cases"]:
                log(f"{case}: resumed from {checkpoint}")
                continue
            impls = implementations(case, dataset.schema, available)
            log(f"{case}: {len(impls) - 1} peer implementation(s)")
            entry = {"label": CASES[case].label, "model": CASES[case].model, "hparams": CASES[case].hparams,
                     "implementations": [{"name": i.name, "library": i.library} for i in impls],
                     "flops_per_sample": flops_per_sample(built(impls[0], s.seed), dataset.train.features(slice(256)))}
            entry["training"], entry["latency_ms"], entry["latency_shared"] = measure_case(
                case, impls, lambda task: execute(task, dataset, s, available), worker, s,
                len(dataset.train) * s.epochs, log)
            entry["quality"] = measure_quality(case, impls, lambda task: execute(task, dataset, s, available), worker,
                                               log)
            if s.memory:
                entry["memory"] = {impl.name: run_probe(case, i, s.threads) for i, impl in enumerate(impls)}
                entry["allocator"] = {mode: run_probe(case, 0, s.threads, mode) for mode in ("default", "retain")}
            report["cases"][case] = entry
            save()
        if FACTOR_CASE in cases and "factors" not in report:
            peers = report["cases"][FACTOR_CASE]["quality"]["histories"]
            report["factors"] = measure_factors(FACTOR_CASE, worker, peers, log)
            save()
        if "profiles" not in report:
            report["profiles"] = measure_profiles(cases, worker, log)
            save()
    finally:
        worker.close()
    report["roofline_gflops"]["fp32"] = max(report["roofline_gflops"]["fp32"], matmul_rate(torch.float32))
    if s.levers and "levers" not in report:  # last: fit switches this process's malloc; the peers as shipped are done
        with contention.watch(s.threads) as during:
            report["levers"] = measure_levers(dataset, s, cases, log)
            deep = [c for c in cases if "hidden_units" in CASES[c].hparams]
            report["bf16_parity"] = bf16_parity(dataset, s, deep, log) if cpu_has_bf16() else []
        report["levers_contention"] = during
    save()
    return report


def resume(fresh: dict, checkpoint: Path | None, log) -> dict:
    """The report saved at ``checkpoint`` when it was measured with ``fresh``'s settings and families by the same
    clean commit, torch and CPU; else ``fresh`` (a checkpoint that cannot be read is named and set aside)."""
    if checkpoint is None or not checkpoint.exists():
        return fresh
    try:
        saved = json.loads(checkpoint.read_text())
        same = {k: saved["environment"][k] for k in RESUMABLE_IF_EQUAL} == {k: fresh["environment"][k]
                                                                             for k in RESUMABLE_IF_EQUAL}
        same = same and saved["settings"] == json.loads(json.dumps(fresh["settings"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        aside = checkpoint.with_name(checkpoint.name + ".damaged")
        checkpoint.replace(aside)
        log(f"{checkpoint}: cannot be read ({type(e).__name__}: {e}); set aside as {aside}, starting afresh")
        return fresh
    if not same or fresh["environment"]["git_commit"].endswith("+dirty"):
        log(f"{checkpoint}: from other settings, families or code (or uncommitted changes): starting afresh")
        return fresh
    log(f"{checkpoint}: resuming, {len(saved['cases'])} famil(ies) already measured")
    saved["roofline_gflops"] = {k: max(v, saved["roofline_gflops"].get(k, 0.0))
                                for k, v in fresh["roofline_gflops"].items()}
    return saved | {"resumed": saved.get("resumed", 0) + 1}


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5k rows, one round, no compile: checks the machinery")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {list(CASES)}")
    parser.add_argument("--out", type=Path, default=Path("results/speed.md"), help="markdown; JSON next to it")
    parser.add_argument("--epochs", type=positive, help=f"epochs per training run (default {Settings.epochs})")
    parser.add_argument("--rounds", type=positive, help=f"interleaved rounds, best kept (default {Settings.rounds})")
    parser.add_argument("--threads", type=positive, help=f"torch threads (default {Settings.threads})")
    parser.add_argument("--no-peers", action="store_true", help="our models only")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-implementation memory processes")
    parser.add_argument("--no-levers", action="store_true", help="skip the lever measurements")
    parser.add_argument("--probe", nargs=4, metavar=("CASE", "IMPL", "THREADS", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        Worker.serve(args.worker)
        return None
    if args.probe:
        case, index, threads, mode = args.probe
        print(json.dumps(probe(case, int(index), int(threads), mode)))
        return None
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; available: {list(CASES)}")
    base = QUICK if args.quick else Settings()
    overrides = {k: v for k, v in {"epochs": args.epochs, "rounds": args.rounds, "threads": args.threads}.items()
                 if v is not None}
    overrides |= {"peers": base.peers and not args.no_peers, "memory": base.memory and not args.no_memory,
                  "levers": base.levers and not args.no_levers}
    checkpoint = args.out.with_suffix(".partial.json")
    report = run(Settings(**{**asdict(base), **overrides}), cases, checkpoint=checkpoint)
    write(report, args.out)
    checkpoint.unlink(missing_ok=True)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return report

