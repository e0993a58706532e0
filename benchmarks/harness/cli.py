"""The command line of ``python -m benchmarks.run``: ``--all`` regenerates results/leaderboard.md.

Every run is a record under ``--out``/records; finished records are reused, so a second
invocation takes seconds and an interrupted one resumes where it stopped.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

import data

from ..engine.distributed import DEVICES, from_environment
from ..engine.runtime import PRECISIONS
from ..reports.leaderboard import write_leaderboard
from ..reports.study import write_study
from .config import DEFAULT_CONFIG, STUDY_CONFIG, ConfigError, load_config
from .sweep import run_experiment
from .tune import TUNE_CONFIG, load_tune_config, tune

QUICK_ROWS = 20_000
QUICK_EPOCHS = 2


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Train and time CTR model families on one data layer and one loop; write a leaderboard.",
    )
    p.add_argument("--all", action="store_true",
                   help="run every model entry of the config (default: benchmarks/configs/default.toml)")
    p.add_argument("--models", metavar="A,B",
                   help="run only these entries, by label or registry name (e.g. fm,dcn_mix); separate with ';' "
                        "when a label contains a comma ('DCN-V2 parallel, 3 layers;fm')")
    p.add_argument("--dataset", metavar="NAME",
                   help=f"data set to run on instead of the config's (registered: {', '.join(data.available())})")
    p.add_argument("--config", metavar="PATH", default=str(DEFAULT_CONFIG),
                   help="experiment config (TOML; format in benchmarks/harness/config.py)")
    p.add_argument("--seeds", metavar="N|A,B",
                   help="number of seeds (0..N-1) or an explicit comma-separated list; default: the config's")
    p.add_argument("--max-epochs", type=int, metavar="N", help="override the config's maximum epochs")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK_ROWS:,} rows, {QUICK_EPOCHS} epochs, 1 seed, written to <out>/quick")
    p.add_argument("--study", action="store_true",
                   help="reproduce the reference study: the default config's families plus "
                        "benchmarks/configs/study.toml (DCN-Mix grid, ablation); writes <out>/study.md too")
    p.add_argument("--tune", action="store_true",
                   help="equal-budget tuning: the config's entries (or --models) as usual, then for every family of "
                        "--tune-config (or those named in --models) --trials trials of a seeded TPE search chosen on "
                        "validation AUC, each a record, and each winner rerun with the seeds; adds the tuned table")
    p.add_argument("--trials", type=int, metavar="N",
                   help="trials per family for --tune (default: the tune config's; about 30 minutes on synthetic "
                        "here, see README)")
    p.add_argument("--tune-config", metavar="PATH", default=str(TUNE_CONFIG),
                   help="search spaces for --tune (TOML; format in benchmarks/harness/tune.py)")
    p.add_argument("--leaderboard", action="store_true",
                   help="only regenerate the leaderboard and plots from existing records (no training)")
    p.add_argument("--force", action="store_true", help="rerun even where a finished record exists")
    p.add_argument("--threads", type=int, default=min(torch.get_num_threads(), 2), metavar="N",
                   help="torch intra-op threads for training and latency (default: %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="bf16: matrix products under bfloat16 CPU autocast in training and latency "
                        "(default fp32; see results/speed.md for its speed and AUC parity)")
    p.add_argument("--no-fused-adam", action="store_true",
                   help="use the per-parameter Adam loop instead of the fused kernel (default: fused)")
    p.add_argument("--no-retain-memory", action="store_true",
                   help="leave glibc malloc returning freed memory to the OS (default: keep it, avoiding page "
                        "faults on every large temporary)")
    p.add_argument("--device", choices=DEVICES, default="cpu",
                   help="where models train and are timed; auto: cuda when torch sees a GPU "
                        "(default: %(default)s). Data parallel over N processes: "
                        "torchrun --standalone --nproc-per-node N -m benchmarks.run ...")
    p.add_argument("--out", metavar="DIR", default="results", help="results folder (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--progress", action="store_true",
                   help="show progress bars even when stderr is not a terminal")
    args = p.parse_args(argv)
    if not (args.all or args.models or args.leaderboard or args.study or args.tune):
        p.error("say what to run: --all, --models A,B, --study, --tune or --leaderboard")
    if args.trials is not None and (args.trials < 1 or not args.tune):
        p.error(f"--trials takes a count >= 1 and goes with --tune, got {args.trials}"
                + ("" if args.tune else " without --tune"))
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    return args


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds takes a count or a comma-separated list of integers, got {text!r}") from None
    if len(values) == 1:
        if values[0] < 1:
            raise ConfigError(f"--seeds count must be >= 1, got {values[0]}")
        return tuple(range(values[0]))
    return tuple(values)


def build_experiment(args, config=None):
    """A config with the command line's overrides; every entry (``--models`` selects later)."""
    experiment = load_config(config or args.config)
    if args.dataset and args.dataset != experiment.dataset:
        data.options(args.dataset)
        experiment = experiment.retarget(args.dataset, {})
    if args.seeds:
        experiment = replace(experiment, seeds=parse_seeds(args.seeds))
    train = dict(experiment.train)
    if args.max_epochs:
        train["max_epochs"] = args.max_epochs
    if args.quick:
        sized = "rows" in data.options(experiment.dataset)  # every loader that samples calls its size `rows`
        options = experiment.dataset_options | ({"rows": QUICK_ROWS} if sized else {})
        train["max_epochs"] = min(train.get("max_epochs", QUICK_EPOCHS), QUICK_EPOCHS)
        experiment = replace(experiment.retarget(experiment.dataset, options), seeds=experiment.seeds[:1])
    return replace(experiment, train=train)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out) / "quick" if args.quick else Path(args.out)
    try:
        placement = from_environment(args.device)
    except ValueError as e:
        print(f"error: --device: {e}", file=sys.stderr)
        return 2
    quiet = args.quiet or placement.rank > 0  # rank 0 speaks for a data-parallel job
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    start = time.perf_counter()
    failed = 0
    try:
        experiment = build_experiment(args)
        experiments = [experiment] + ([build_experiment(args, STUDY_CONFIG)] if args.study else [])
        tune_config = load_tune_config(experiment, args.tune_config) if args.tune else None
        wanted = None
        if args.models:
            separator = ";" if ";" in args.models else ","
            wanted = [m.strip() for m in args.models.split(separator) if m.strip()]
            choices = sorted({c for e in experiments for c in e.choices()})
            unknown = [w for w in wanted if w not in choices]
            if unknown:
                raise ConfigError(f"no model entry matches {unknown}; choose from {choices}")
            experiments = [e.select(wanted) for e in experiments]
    except (ConfigError, KeyError) as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    levers = {"precision": args.precision, "fused_adam": not args.no_fused_adam,
              "retain_memory": not args.no_retain_memory}
    if not args.leaderboard:
        for to_run in experiments:
            say(f"{to_run.dataset}: {len(to_run.entries)} model(s) x {len(to_run.seeds)} seed(s), "
                f"{args.threads} thread(s) -> {out}/records")
            summary = run_experiment(to_run, out, threads=args.threads, force=args.force, levers=levers,
                                     placement=placement,
                                     progress=not quiet and (args.progress or sys.stderr.isatty()))
            failed += summary.failed
            say(f"ran {summary.ran}, reused {summary.reused}, failed {summary.failed}")
            for line in summary.errors:
                print(f"FAILED {line}", file=sys.stderr)
        if tune_config:
            tick = time.perf_counter()
            manifest = tune(experiment, tune_config, out, trials=args.trials, families=wanted, say=say,
                            threads=args.threads, force=args.force, levers=levers,
                            progress=not args.quiet and (args.progress or sys.stderr.isatty()))
            say(f"tuned in {time.perf_counter() - tick:.0f} s -> {manifest}")
    if placement.rank:
        return 1 if failed else 0
    path = write_leaderboard(out, experiment)
    if args.study:
        say(f"wrote {write_study(out, experiment, build_experiment(args, STUDY_CONFIG))}")
    say(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0

