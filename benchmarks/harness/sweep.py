"""Run an Experiment: every (model entry, seed) once, each as an atomically written record.

Finished records are reused, so an interrupted sweep resumes where it stopped; a run that
raises is recorded as failed with its error and the sweep goes on. Each finished run's validation and
test predictions are written beside its record (:mod:`benchmarks.harness.predictions`). The measurements a config
turns on (``[measure]``) are run after training and stored under their name in the record
(``None`` where the model has nothing to measure); a record lacking one is rerun.

Under ``torchrun`` (a ``placement`` with several ranks) every rank trains, only rank 0 probes
latency, measures and writes records; a rank that raises ends the job with an error naming it
(no failed record is written, since the other ranks cannot go on without it).
"""

from __future__ import annotations

import importlib.util
import inspect
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

import data
import models
from data.atomic import write_atomically

from ..engine import contention, spectrum
from ..engine.distributed import Placement, device_name
from ..engine.environment import environment
from ..engine.fit import fit
from ..engine.latency import measure_latency
from ..engine.metrics import evaluate
from ..engine.runtime import LATENCY_LEVERS, LEVERS
from .config import Experiment, ModelEntry
from .predictions import write_predictions
from .records import dataset_variant, read_record, record_path, weights_path, write_record

MIN_STEPS = 300  # a run planned with fewer optimiser steps: too few to compare families; warned and marked
_FIT_DEFAULTS = {k: p.default for k, p in inspect.signature(fit).parameters.items()}


def planned_steps(dataset: data.Dataset, train: dict) -> int:
    """Optimiser steps of a run that does not stop early: max_epochs x batches per epoch."""
    settings = _FIT_DEFAULTS | train
    return settings["max_epochs"] * data.num_batches(dataset.train, settings["batch_size"])


@dataclass
class SweepSummary:
    ran: int = 0
    reused: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    few_steps: list[str] = field(default_factory=list)


def dataset_summary(dataset: data.Dataset, name: str, options: dict) -> dict:
    """What a record keeps about its data set: name, options, audit info and the oracle metrics."""
    oracle = None
    if dataset.val.prob is not None and dataset.test.prob is not None:
        oracle = {s: evaluate(getattr(dataset, s).y, getattr(dataset, s).prob, s) for s in ("val", "test")}
    return {"name": name, "variant": dataset_variant(name, options), "options": options,
            "info": dataset.info, "oracle": oracle}


def run_one(entry: ModelEntry, seed: int, dataset: data.Dataset, summary: dict, experiment: Experiment,
            key: dict, progress: bool, placement: Placement | None = None) -> tuple[dict, dict] | None:
    """Train and time one (entry, seed), then run the config's measurements; the speed levers in ``key``
    go to ``fit`` and the latency probe. Returns the record and ``{split: (labels, probabilities)}``
    of the restored weights (empty when the run failed); ranks other than 0 train and return None."""
    placement = placement or Placement()
    levers = key["levers"]
    record = {"label": entry.label, "key": key, "dataset": summary,
              "environment": environment(key["threads"]) | _placement_fields(placement)}
    try:
        torch.manual_seed(seed)
        model = models.build(entry.model, dataset.schema, **entry.hparams)  # fit puts it on the device
        init_cross = spectrum.snapshot(model) if "spectrum" in experiment.measure else None
        with contention.watch(key["threads"]) as during_training:
            result = fit(model, dataset, seed=seed, progress=progress and placement.rank == 0,
                         name=f"{entry.label} seed {seed}", placement=placement,
                         **experiment.train_settings(entry), **levers)
        if placement.rank:
            return None
        probe = {k: v for k, v in levers.items() if k in LATENCY_LEVERS}
        measured, weights = {}, None
        with contention.watch(key["threads"]) as during_latency:
            latency = {str(b): measure_latency(model, dataset.schema, b, **probe)
                       for b in experiment.latency_batch_sizes}
            if "serve" in experiment.measure:
                measured["serve"], weights = _serve(model, dataset, experiment, seed, placement)
        if "spectrum" in experiment.measure:
            measured["spectrum"] = None if init_cross is None else spectrum.analyze(model.cpu(), init_cross, dataset)
    except Exception as e:  # recorded, reported on the leaderboard; the sweep goes on
        if placement.distributed:
            raise RuntimeError(f"rank {placement.rank} of {placement.world_size} failed on {entry.label}, "
                               f"seed {seed}: {type(e).__name__}: {e}") from e
        return record | {"status": "failed", "error": f"{type(e).__name__}: {e}",
                         "traceback": traceback.format_exc(limit=-4)}, {}, None
    predictions = {s: (getattr(dataset, s).y.numpy(), p.numpy()) for s, p in result.predictions.items()}
    return record | {
        "status": "ok",
        "metrics": {"val_auc": result.best_val_auc, "val_logloss": result.best_val_logloss,
                    "test_auc": result.test_auc, "test_logloss": result.test_logloss,
                    "test_ece": result.test_calibration["ece"],
                    "test_calibration_ratio": result.test_calibration["calibration_ratio"],
                    "quality_seconds": result.time_to_quality["seconds"],
                    "quality_epochs": result.time_to_quality["epochs"]},
        "params": models.count_parameters(model),
        "latency": latency,
        "train_samples_per_second": result.samples_per_second,
        "train_seconds": result.train_seconds,
        "epochs": result.epochs,
        "steps": result.steps,
        "planned_steps": planned_steps(dataset, experiment.train_settings(entry)),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "history": result.history,
        "contention": {"train": during_training, "latency": during_latency},
        **measured,
    }, predictions, weights


def _serve(model: torch.nn.Module, dataset: data.Dataset, experiment: Experiment, seed: int,
           placement: Placement) -> tuple[dict | None, dict | None]:
    """The ``serve`` measure of one run and the weights to keep: for the experiment's first seed on CPU, the
    ONNX export checked on the test split and timed against eager PyTorch (``benchmarks.export``); None for the
    other seeds. Without the optional ``serve`` extra the record says so and the weights are still kept."""
    if seed != experiment.seeds[0]:
        return None, None
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if placement.device.type != "cpu":
        return {"skipped": f"trained on {placement.device.type}; ONNX Runtime is timed on CPU runs"}, weights
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return {"skipped": "onnx/onnxruntime not installed (pip install -e '.[serve]')"}, weights
    from ..export import serve_report  # the optional extra's code, imported only where it is installed

    return serve_report(model.eval(), dataset, batch_sizes=experiment.latency_batch_sizes), weights


def _placement_fields(placement: Placement) -> dict:
    """What a record's environment says about where it trained: nothing extra for one CPU process."""
    if not placement.distributed and placement.device.type == "cpu":
        return {}
    return {"device": device_name(placement.device), "world_size": placement.world_size}


def run_experiment(experiment: Experiment, out_dir: Path, *, threads: int, force: bool = False,
                   progress: bool = False, levers: dict | None = None,
                   placement: Placement | None = None) -> SweepSummary:
    """Make sure a record exists for every (entry, seed) of ``experiment`` under ``out_dir``.

    ``levers``: speed options of ``fit`` (see ``LEVERS``); every one is recorded in the key.
    ``placement``: device and data-parallel rank (default: one CPU process); in the key where not the default.
    """
    placement = placement or Placement()
    unknown = sorted(set(levers or {}) - set(LEVERS))
    if unknown:
        raise ValueError(f"unknown speed lever(s) {unknown}; accepted: {sorted(LEVERS)}")
    levers = LEVERS | (levers or {})
    torch.set_num_threads(threads)
    todo = []
    summary = SweepSummary()
    for entry in experiment.entries:
        for seed in experiment.seeds:
            key = experiment.key(entry, seed, threads, levers, placement.device.type, placement.world_size)
            path = record_path(out_dir, key)
            existing = read_record(path)
            if (existing is not None and existing["status"] == "ok" and experiment.measure <= existing.keys()
                    and not force):
                summary.reused += 1
            else:
                todo.append((entry, seed, key, path))
    if not todo:
        return summary
    dataset = data.load(experiment.dataset, **experiment.dataset_options)
    ds_summary = dataset_summary(dataset, experiment.dataset, experiment.dataset_options)
    bar = tqdm(todo, desc=f"{experiment.dataset} runs", disable=not progress, unit="run")
    for entry, seed, key, path in bar:
        bar.set_postfix_str(f"{entry.label}, seed {seed}")
        result = run_one(entry, seed, dataset, ds_summary, experiment, key, progress, placement)
        if result is None:  # not rank 0
            continue
        record, predictions, weights = result
        write_predictions(path, predictions)  # first: a record on disk has its predictions (up to the size limit)
        if weights is not None:
            write_atomically(weights_path(path), lambda staged, weights=weights: torch.save(weights, staged))
        write_record(path, record)
        summary.ran += 1
        if record["status"] != "ok":
            summary.failed += 1
            summary.errors.append(f"{entry.label}, seed {seed}: {record['error']}")
        else:
            bar.set_postfix_str(f"{entry.label}, seed {seed}, test AUC {record['metrics']['test_auc']:.4f}")
            if record["planned_steps"] < MIN_STEPS:
                summary.few_steps.append(f"{entry.label}, seed {seed}: {record['planned_steps']} steps planned")
    bar.close()
    return summary
