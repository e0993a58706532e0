"""The command line of ``python -m benchmarks.run``: ``--all`` regenerates results/leaderboard.md.

Every run is a record under ``--out``/records; finished records are reused, so a second
invocation takes seconds and an interrupted one resumes where it stopped. Every flag is checked
before any work (exit 2, one line naming the flag). ``<out>/leaderboard.md`` is always the default
config at the default set-up; a run with other settings writes ``<out>/runs/<name>/leaderboard.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

import data

from ..engine.distributed import DEVICES, from_environment
from ..engine.runtime import LEVERS, PRECISIONS
from ..reports.leaderboard import NoRecords, write_leaderboard
from ..reports.study import write_study
from .config import DEFAULT_CONFIG, STUDY_CONFIG, ConfigError, load_config
from .lock import FolderBusy, sweep_lock
from .sweep import MIN_STEPS, run_experiment
from .tune import TUNE_CONFIG, load_tune_config, tune

QUICK_ROWS = 20_000
QUICK_EPOCHS = 2
MAX_SEEDS = 100
CORES = os.cpu_count() or 1
DEFAULT_THREADS = min(torch.get_num_threads(), 2)
# Situations a user meets (data not fetched, a missing file, a folder not writable): one line, no traceback.
EXPECTED = (ConfigError, data.DataError, KeyError, TypeError, ValueError, OSError, FolderBusy, NoRecords)


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
    p.add_argument("--max-epochs", type=int, metavar="N", help="override the config's maximum epochs (>= 1)")
    p.add_argument("--data", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the data set's loader, repeatable; comma lists become lists, numbers are "
                        "parsed (e.g. --dataset table --data path=clicks.csv --data label=click "
                        "--data categorical=country,device --data numeric=age)")
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
                   help="trials per family for --tune (default: the tune config's; about 40 minutes on synthetic "
                        "here, see README)")
    p.add_argument("--tune-config", metavar="PATH", default=str(TUNE_CONFIG),
                   help="search spaces for --tune (TOML; format in benchmarks/harness/tune.py)")
    p.add_argument("--leaderboard", action="store_true",
                   help="only regenerate the leaderboard and plots from existing records (no training)")
    p.add_argument("--force", action="store_true", help="rerun even where a finished record exists")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS, metavar="N",
                   help=f"torch intra-op threads for training and latency, 1..{CORES} (default: %(default)s)")
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
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = p.parse_args(argv)
    if args.quick and not (args.all or args.models or args.leaderboard or args.study or args.tune):
        args.all = True
    if not (args.all or args.models or args.leaderboard or args.study or args.tune):
        p.error("say what to run: --all, --models A,B, --study, --tune, --leaderboard or --quick")
    if args.trials is not None and (args.trials < 1 or not args.tune):
        p.error(f"--trials takes a count >= 1 and goes with --tune, got {args.trials}"
                + ("" if args.tune else " without --tune"))
    # Threads beyond the cores time-slice one another: every speed figure would be wrong, so refused.
    if not 1 <= args.threads <= CORES:
        p.error(f"--threads {args.threads}: accepted 1..{CORES} (the number of CPU cores)")
    if args.max_epochs is not None and args.max_epochs < 1:
        p.error(f"--max-epochs {args.max_epochs}: accepted an integer >= 1")
    if args.data and not args.dataset:
        p.error("--data needs --dataset NAME (the data set whose loader takes the options)")
    for flag, check in (("--seeds", parse_seeds), ("--data", lambda d: parse_data(args.dataset, d))):
        value = getattr(args, flag[2:])
        try:
            value and check(value)
        except ConfigError as e:
            p.error(str(e))
    return args


def parse_seeds(text: str) -> tuple[int, ...]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds {text}: accepted a count or a comma-separated list of integers >= 0") from None
    if len(values) == 1:
        if not 1 <= values[0] <= MAX_SEEDS:
            raise ConfigError(f"--seeds {values[0]}: accepted a count from 1 to {MAX_SEEDS}")
        return tuple(range(values[0]))
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated or min(values) < 0 or len(values) > MAX_SEEDS:
        raise ConfigError(f"--seeds {text}: accepted up to {MAX_SEEDS} distinct integers >= 0"
                          + (f" (repeated: {repeated})" if repeated else ""))
    return tuple(values)


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None if text.lower() == "none" else text


def parse_data(dataset: str, pairs: list[str]) -> dict:
    """``--data KEY=VALUE`` pairs as loader options: a value starting with ``{`` is a JSON object (per-column
    options such as ``numeric_as={"age": "value"}``); an option whose default is a tuple, or a value with a
    comma, becomes a list; numbers become numbers. Keys are checked against the loader's options."""
    try:
        accepted = data.options(dataset)
    except KeyError as e:
        raise ConfigError(f"--dataset {dataset}: {e.args[0]}") from None
    loader_options = data.registry._entry(dataset).options
    fields = dataclasses.fields(loader_options) if loader_options else ()
    listed = {f.name for f in fields if isinstance(f.default, tuple)}
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--data {pair}: accepted KEY=VALUE with KEY one of {accepted}")
        if key not in accepted:
            raise ConfigError(f"--data {pair}: {dataset} has no option {key!r}; accepted: {accepted}")
        if key in options:
            raise ConfigError(f"--data {pair}: {key} is given twice")
        if value.lstrip().startswith("{"):
            try:
                options[key] = json.loads(value)
            except json.JSONDecodeError as err:
                raise ConfigError(f"--data {pair}: a value starting with '{{' must be a JSON object ({err})") from None
            continue
        parts = [_number(v.strip()) for v in value.split(",") if v.strip()]
        options[key] = parts if key in listed or "," in value else _number(value)
    return options


def build_experiment(args, config=None):
    """A config with the command line's overrides; every entry (``--models`` selects later)."""
    experiment = load_config(config or args.config)
    if args.data or (args.dataset and args.dataset != experiment.dataset):
        experiment = experiment.retarget(args.dataset, parse_data(args.dataset, args.data))
    if args.seeds:
        experiment = replace(experiment, seeds=parse_seeds(args.seeds))
    train = dict(experiment.train)
    if args.max_epochs is not None:
        train["max_epochs"] = args.max_epochs
    if args.quick:
        sized = "rows" in data.options(experiment.dataset)  # every loader that samples calls its size `rows`
        options = experiment.dataset_options | ({"rows": QUICK_ROWS} if sized else {})
        train["max_epochs"] = min(train.get("max_epochs", QUICK_EPOCHS), QUICK_EPOCHS)
        experiment = replace(experiment.retarget(experiment.dataset, options), seeds=experiment.seeds[:1])
    return replace(experiment, train=train)


def run_name(args, levers: dict) -> str | None:
    """The folder name of a run whose settings differ from the default experiment's; None when canonical."""
    parts = [f"{flag}-{value}" for flag, value in (
        ("config", Path(args.config).stem if Path(args.config) != DEFAULT_CONFIG else None),
        ("models", args.models), ("seeds", args.seeds), ("epochs", args.max_epochs),
        ("data", ",".join(args.data) if args.data else None),
        ("threads", args.threads if args.threads != DEFAULT_THREADS else None),
        ("device", args.device if args.device != "cpu" else None),
        ("ranks", os.environ.get("WORLD_SIZE") if os.environ.get("WORLD_SIZE", "1") != "1" else None),
    ) if value is not None]
    parts += [f"{k}-{v}" for k, v in sorted(levers.items()) if v != LEVERS[k]]
    name = "_".join(parts)
    return "".join(c if c.isalnum() or c in "-_.," else "-" for c in name)[:120] or None


def check_writable(folder: Path) -> None:
    """Raise OSError naming ``folder`` when a file cannot be created in it (before any training)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise OSError(f"--out {folder}: cannot write there ({e.strerror or e}); pass a writable --out") from None


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out) / "quick" if args.quick else Path(args.out)
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *a, **kw: print(f"warning: {message}", file=sys.stderr)
        try:
            return run(args, out)
        except KeyboardInterrupt:
            if args.debug:
                raise
            print(f"interrupted; finished runs are kept in {out}/records: rerun the same command to resume",
                  file=sys.stderr)
            return 130
        except EXPECTED as e:
            if args.debug:
                raise
            print(f"error: {e.args[0] if e.args and isinstance(e, KeyError) else e}", file=sys.stderr)
            return 2 if isinstance(e, ConfigError) else 1


def run(args, out: Path) -> int:
    try:
        placement = from_environment(args.device)
    except ValueError as e:
        raise ConfigError(f"--device: {e}") from e
    finished = False
    try:
        code = run_placed(args, out, placement)
        finished = True
        return code
    finally:
        placement.leave(finished)


def run_placed(args, out: Path, placement) -> int:
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
    except (ConfigError, KeyError, TypeError) as e:
        raise ConfigError(e.args[0]) from e
    levers = {"precision": args.precision, "fused_adam": not args.no_fused_adam,
              "retain_memory": not args.no_retain_memory}
    name = None if args.quick else run_name(args, levers)
    if not args.leaderboard:
        check_writable(out)
        # one lock per folder; under torchrun only rank 0 holds it (the other ranks write nothing)
        with contextlib.nullcontext() if placement.rank else sweep_lock(out):
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
                for line in summary.few_steps:
                    print(f"warning: {line}: fewer than {MIN_STEPS} optimiser steps; lower batch_size or raise "
                          "max_epochs for a meaningful comparison", file=sys.stderr)
            if tune_config:
                tick = time.perf_counter()
                manifest = tune(experiment, tune_config, out, trials=args.trials, families=wanted, say=say,
                                threads=args.threads, force=args.force, levers=levers,
                                progress=not quiet and (args.progress or sys.stderr.isatty()))
                say(f"tuned in {time.perf_counter() - tick:.0f} s -> {manifest}")
    if placement.rank:
        return 1 if failed else 0
    here = (args.threads, levers, placement.device.type, placement.world_size)  # the set-up this command ran
    if name is None:
        canonical = load_config(DEFAULT_CONFIG) if not args.quick else experiment
        path = write_leaderboard(out, canonical, setup=here if args.quick else (DEFAULT_THREADS, LEVERS, "cpu", 1))
    else:
        path = write_leaderboard(out, experiment, report_dir=out / "runs" / name, setup=here)
    if args.study:
        say(f"wrote {write_study(out, experiment, build_experiment(args, STUDY_CONFIG))}")
    say(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0
