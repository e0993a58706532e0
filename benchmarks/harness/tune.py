"""Equal-budget tuning: the same number of trials of a seeded Optuna TPE search for every family.

Each family's search space is declared in a TOML file (``benchmarks/configs/tune.toml``)::

    [tune]
    trials = 30                 # default of --trials
    seed = 0                    # sampler seed
    startup_trials = 8          # random trials before TPE models the results

    [common]                    # searched for every family (lr, weight_decay, batch_size of fit)
    lr = { low = 3e-4, high = 1e-2, log = true }

    [family.dcn_v2]             # a registry name
    default = "DCN-V2 parallel, 3 layers"   # the default config's entry it starts from
    num_layers = { low = 1, high = 4 }      # integers when both bounds are integers
    combine = { choices = ["parallel", "stacked"] }

A trial trains the family at the default entry's configuration with the sampled values on the
first seed of the experiment; selection uses validation AUC only. Every trial is a run record,
so an interrupted search resumes: trial ``i`` asks a TPE sampler seeded with
``seed * 100003 + i`` that has seen trials ``0..i-1`` only, so a resumed search proposes exactly
the configurations an uninterrupted one did and finds their records (a side effect: the random
start-up trials draw the same values of the shared parameters, ``lr`` and ``weight_decay``, in
every family, common random numbers across the families). Each family's best trial is
then rerun with all the experiment's seeds. ``<out>/tuning/<variant>.json`` lists the trials and
the chosen configurations for the reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import optuna

import models

from ..engine.runtime import LEVERS
from .config import CONFIG_DIR, ConfigError, Experiment, ModelEntry, parse_config, read_toml
from .records import dataset_variant, read_record, record_path, write_record
from .sweep import run_experiment

TUNE_CONFIG = CONFIG_DIR / "tune.toml"
TUNABLE_TRAIN = ("lr", "weight_decay", "batch_size")
SEED_STRIDE = 100_003


@dataclass(frozen=True)
class Param:
    """One searched value: a range (``low``, ``high``, ``log``) or a list of ``choices``."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple | None = None

    def suggest(self, trial: optuna.Trial):
        if self.choices is not None:  # JSON strings: Optuna's choices must be scalars, hidden widths are lists
            return json.loads(trial.suggest_categorical(self.name, [json.dumps(c) for c in self.choices]))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def extremes(self) -> tuple:
        return (self.choices[0], self.choices[-1]) if self.choices is not None else (self.low, self.high)


@dataclass(frozen=True)
class FamilySpace:
    family: str
    default: str
    params: tuple[Param, ...]


@dataclass(frozen=True)
class TuneConfig:
    trials: int
    seed: int
    startup_trials: int
    spaces: tuple[FamilySpace, ...]
    source: str = ""


def _param(name: str, raw, where: str) -> Param:
    if not isinstance(raw, dict) or set(raw) not in ({"choices"}, {"low", "high"}, {"low", "high", "log"}):
        raise ConfigError(f"{where}: {name} must be {{ choices = [...] }} or {{ low = .., high = .., log = .. }}, "
                          f"got {raw!r}")
    if "choices" in raw:
        if not isinstance(raw["choices"], list) or not raw["choices"]:
            raise ConfigError(f"{where}: {name}: choices must be a non-empty list, got {raw['choices']!r}")
        return Param(name, choices=tuple(raw["choices"]))
    low, high, log = raw["low"], raw["high"], raw.get("log", False)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    if not numbers or low >= high or (log and low <= 0):
        raise ConfigError(f"{where}: {name}: need numbers low < high (low > 0 with log), got low={low!r}, "
                          f"high={high!r}, log={log!r}")
    return Param(name, low=low, high=high, log=bool(log))


def parse_tune_config(raw: dict, experiment: Experiment, source: str = "<tune config>") -> TuneConfig:
    """Checks every table against the registry and ``experiment`` (whose entries the defaults name)."""
    unknown = sorted(set(raw) - {"tune", "common", "family"})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {unknown}; accepted: ['common', 'family', 'tune']")
    tune = raw.get("tune", {})
    settings = {"trials": tune.get("trials", 30), "seed": tune.get("seed", 0),
                "startup_trials": tune.get("startup_trials", 8)}
    bad = {k: v for k, v in settings.items() if not isinstance(v, int) or v < (1 if k == "trials" else 0)}
    if bad or set(tune) - set(settings):
        raise ConfigError(f"{source}: [tune] takes integers trials >= 1, seed >= 0, startup_trials >= 0; "
                          f"got {tune!r}")
    common = [_param(n, v, f"{source}: [common]") for n, v in raw.get("common", {}).items()]
    spaces = []
    for family, table in raw.get("family", {}).items():
        where = f"{source}: [family.{family}]"
        if family not in models.available():
            raise ConfigError(f"{where}: unknown family; registered: {models.available()}")
        default = next((e for e in experiment.entries if e.label == table.get("default")), None)
        if default is None or default.model != family:
            raise ConfigError(f"{where}: default must name a {family} entry of {experiment.source}, "
                              f"got {table.get('default')!r}")
        params = tuple(common) + tuple(_param(n, v, where) for n, v in table.items() if n != "default")
        for p in params:
            if p.name not in TUNABLE_TRAIN and p.name not in models.defaults(family):
                raise ConfigError(f"{where}: {p.name!r} is neither a training setting {list(TUNABLE_TRAIN)} "
                                  f"nor a hyperparameter of {family} {sorted(models.defaults(family))}")
        for end in (0, 1):
            trial_entry(default, {p.name: p.extremes()[end] for p in params}, f"{where} ({'high' if end else 'low'})")
        spaces.append(FamilySpace(family, default.label, params))
    if not spaces:
        raise ConfigError(f"{source}: no [family.<name>] tables")
    return TuneConfig(spaces=tuple(spaces), source=source, **settings)


def load_tune_config(experiment: Experiment, path: str | Path = TUNE_CONFIG) -> TuneConfig:
    return parse_tune_config(read_toml(Path(path), "tune config"), experiment, str(path))


def trial_entry(default: ModelEntry, values: dict, label: str) -> ModelEntry:
    """``default`` with the sampled ``values`` (training settings to ``train``, the rest to ``hparams``)."""
    train = default.train | {k: v for k, v in values.items() if k in TUNABLE_TRAIN}
    hparams = default.hparams | {k: v for k, v in values.items() if k not in TUNABLE_TRAIN}
    raw = {"model": [{"label": label, "name": default.model, "hparams": hparams, "train": train}]}
    return parse_config(raw, source=label).entries[0]


def manifest_path(out_dir: Path, experiment: Experiment) -> Path:
    return Path(out_dir) / "tuning" / f"{dataset_variant(experiment.dataset, experiment.dataset_options)}.json"


def read_manifest(out_dir: Path, experiment: Experiment) -> dict | None:
    """The tuning summary of ``experiment``'s data set, or None when it was not tuned."""
    return read_record(manifest_path(out_dir, experiment), required=("trials", "families"))


def search(space: FamilySpace, experiment: Experiment, config: TuneConfig, trials: int, out_dir: Path,
           **sweep) -> list[dict]:
    """Run (or reuse) ``trials`` trials of ``space``; returns per trial its values, record file and val AUC."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    default = next(e for e in experiment.entries if e.label == space.default)
    study = optuna.create_study(direction="maximize")
    seed = experiment.seeds[0]
    levers = LEVERS | sweep.get("levers", {})
    done = []
    for i in range(trials):
        study.sampler = optuna.samplers.TPESampler(seed=config.seed * SEED_STRIDE + i,
                                                   n_startup_trials=config.startup_trials)
        trial = study.ask()
        values = {p.name: p.suggest(trial) for p in space.params}
        entry = trial_entry(default, values, f"{space.family} trial {i}")
        one = replace(experiment, entries=(entry,), seeds=(seed,))
        run_experiment(one, out_dir, **sweep)
        path = record_path(out_dir, one.key(entry, seed, sweep["threads"], levers))
        record = read_record(path)
        ok = record is not None and record["status"] == "ok"
        val_auc = record["metrics"]["val_auc"] if ok else None
        study.tell(trial, val_auc, state=None if ok else optuna.trial.TrialState.FAIL)
        done.append({"trial": i, "values": values, "record": path.name, "val_auc": val_auc,
                     "model": entry.model, "hparams": entry.hparams, "train": entry.train})
    return done


def tune(experiment: Experiment, config: TuneConfig, out_dir: Path, *, trials: int | None = None,
         families: list[str] | None = None, say=print, **sweep) -> Path:
    """Search every family of ``config`` (or those in ``families``), rerun each winner with all seeds of
    ``experiment`` and write the manifest; ``sweep``: keywords of ``run_experiment`` (threads, levers, ...)."""
    trials = trials or config.trials
    spaces = [s for s in config.spaces if not families or s.family in families or s.default in families]
    manifest = {"trials": trials, "sampler_seed": config.seed, "startup_trials": config.startup_trials,
                "selection": "validation AUC of seed " + str(experiment.seeds[0]), "families": {}}
    for space in spaces:
        found = search(space, experiment, config, trials, out_dir, **sweep)
        scored = [t for t in found if t["val_auc"] is not None]
        best = max(scored, key=lambda t: t["val_auc"]) if scored else None
        manifest["families"][space.family] = {"default": space.default, "searched": [p.name for p in space.params],
                                              "trials": found, "best": None if best is None else best["trial"]}
        if best is None:
            say(f"{space.family}: all {trials} trials failed")
            continue
        entry = ModelEntry(f"{space.family} tuned", best["model"], best["hparams"], best["train"])
        run_experiment(replace(experiment, entries=(entry,)), out_dir, **sweep)
        say(f"{space.family}: best of {trials} trials val AUC {best['val_auc']:.4f} with {best['values']}")
    path = manifest_path(out_dir, experiment)
    write_record(path, manifest)
    return path
