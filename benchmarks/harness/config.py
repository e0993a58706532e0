"""Experiments as data: a TOML file lists the data set, seeds, training settings and models.

```toml
[dataset]
name = "synthetic"          # any data.load name
options = {}                # keyword options of that loader

[run]
seeds = [0, 1, 2]

[train]                     # training options of benchmarks.engine.fit.fit (TRAIN_OPTIONS below);
lr = 1e-3                   # seeds are in [run], speed levers and threads on the command line
max_epochs = 8

[latency]
batch_sizes = [1, 4096]

[measure]                   # optional measurements after training
spectrum = false            # DCN-V2 cross-matrix spectra and rank truncation (benchmarks.engine.spectrum)
serve = false               # first seed of each entry: keep its weights (RECORD.pt) and check and time it
                            # through ONNX Runtime (benchmarks.export; needs the serve extra)

[[model]]                   # either a study preset ...
preset = "DCN-V2 parallel, 3 layers"

[[model]]                   # ... or a registry name with hyperparameters
label = "FM, d=8"
name = "fm"
hparams = { embed_dim = 8 }
train = { lr = 3e-3 }       # optional per-model overrides of [train]
group = "factorisation"     # optional tag; reports use it to pick their tables

A config may start with `extends = "default.toml"` (a path relative to it): it then takes
that file's [dataset], [run], [train], [latency] and [measure] (its own tables override them key by
key) and only its own models.

[[grid]]                    # the cartesian product of `axes`, one model entry per cell
label = "DCN-Mix {combine}, {num_layers} layers"
name = "dcn_mix"            # (or preset = ...), hparams, train and group as in [[model]]
axes = { num_layers = [1, 2, 3, 4], combine = ["parallel", "stacked"] }
```
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import tomllib

import models
from data import Field, Schema

from .records import canonical, record_key

CONFIG_DIR = Path(__file__).parents[1] / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"
STUDY_CONFIG = CONFIG_DIR / "study.toml"



@dataclass(frozen=True)
class Option:
    """A numeric config value: its type and lower bound (``low``, inclusive unless ``above``)."""

    kind: type
    low: float
    above: bool = False

    def check(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float) if self.kind is float else self.kind):
            return False
        if not math.isfinite(value):
            return False
        return value > self.low if self.above else value >= self.low

    def accepted(self) -> str:
        what = "a number" if self.kind is float else "an integer"
        return f"{what} {'>' if self.above else '>='} {self.low:g}"


# The training options of fit that a config may set: [train] and a model entry's `train` take these only.
TRAIN_OPTIONS = {
    "lr": Option(float, 0, above=True),
    "weight_decay": Option(float, 0),
    "batch_size": Option(int, 1),
    "max_epochs": Option(int, 1),
    "eval_every": Option(int, 1),
    "patience": Option(int, 1),
    "eval_batch_size": Option(int, 1),
}
TRAIN_KEYS = sorted(TRAIN_OPTIONS)
MEASURES = ("spectrum", "serve")
_ELSEWHERE = {  # settings that are not training options, and where they belong
    "seed": " (seeds go in [run] seeds)", "seeds": " (seeds go in [run] seeds)",
    "precision": " (a speed lever: --precision on the command line)",
    "fused_adam": " (a speed lever: --no-fused-adam on the command line)",
    "retain_memory": " (a speed lever: --no-retain-memory on the command line)",
    "threads": " (--threads on the command line)", "device": " (runs are on CPU; there is no device setting)",
}
_PROBE_SCHEMA = Schema([Field(f"f{i}", 3) for i in range(4)])


class ConfigError(ValueError):
    """A config file that cannot be run; the message names the file and the entry."""


@dataclass(frozen=True)
class ModelEntry:
    label: str
    model: str
    hparams: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    group: str = ""


@dataclass(frozen=True)
class Experiment:
    dataset: str
    dataset_options: dict
    seeds: tuple[int, ...]
    train: dict
    latency_batch_sizes: tuple[int, ...]
    entries: tuple[ModelEntry, ...]
    source: str = ""
    measure: frozenset[str] = frozenset()

    def train_settings(self, entry: ModelEntry) -> dict:
        return self.train | entry.train

    def key(self, entry: ModelEntry, seed: int, threads: int, levers: dict | None = None, device: str = "cpu",
            world_size: int = 1) -> dict:
        """The record key of ``entry`` at ``seed`` in this experiment (on ``device``, ``world_size`` processes)."""
        return record_key(dataset=self.dataset, dataset_options=self.dataset_options, model=entry.model,
                          hparams=entry.hparams, train=self.train_settings(entry), seed=seed, threads=threads,
                          levers=levers, device=device, world_size=world_size)

    def group(self, name: str) -> tuple[ModelEntry, ...]:
        return tuple(e for e in self.entries if e.group == name)

    def retarget(self, dataset: str, options: dict) -> Experiment:
        """The same models and settings on another data set."""
        return replace(self, dataset=dataset, dataset_options=dict(options))

    def select(self, wanted: list[str]) -> Experiment:
        """Keep the entries whose label or registry name is in ``wanted``."""
        return replace(self, entries=tuple(e for e in self.entries if e.label in wanted or e.model in wanted))

    def choices(self) -> list[str]:
        """Every label and registry name ``select`` understands."""
        return sorted({e.label for e in self.entries} | {e.model for e in self.entries})


def read_toml(path: Path, what: str = "config file") -> dict:
    """The TOML table in ``path``; a ConfigError naming ``what`` and the file when absent or malformed."""
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def load_config(path: str | Path = DEFAULT_CONFIG) -> Experiment:
    path = Path(path)
    raw = read_toml(path)
    if "extends" in raw:
        base = load_config(path.parent / raw.pop("extends"))
        inherited = {"dataset": {"name": base.dataset, "options": base.dataset_options},
                     "run": {"seeds": list(base.seeds)}, "train": base.train,
                     "latency": {"batch_sizes": list(base.latency_batch_sizes)},
                     "measure": {m: True for m in base.measure}}
        raw = raw | {table: inherited[table] | raw.get(table, {}) for table in inherited}
    return parse_config(raw, source=str(path))


def parse_config(raw: dict, source: str = "<config>") -> Experiment:
    _only(raw, {"dataset", "run", "train", "latency", "measure", "model", "grid"}, source, "top level")
    dataset = raw.get("dataset", {})
    _only(dataset, {"name", "options"}, source, "[dataset]")
    if not isinstance(dataset.get("name", ""), str):
        raise ConfigError(f"{source}: [dataset] name = {dataset['name']!r}; accepted: a data set name (a string)")
    _only(dataset.get("options", {}), None, source, "[dataset] options")
    run = raw.get("run", {})
    _only(run, {"seeds"}, source, "[run]")
    train = _train_options(raw.get("train", {}), source, "[train]")
    latency = raw.get("latency", {})
    _only(latency, {"batch_sizes"}, source, "[latency]")
    measure = raw.get("measure", {})
    _only(measure, set(MEASURES), source, "[measure]")
    for key, value in measure.items():
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: [measure] {key} = {value!r}; accepted: true or false")
    seeds = run.get("seeds", [0, 1, 2])
    _int_list(seeds, 0, source, "[run]", "seeds")
    _int_list(latency.get("batch_sizes", [1, 4096]), 1, source, "[latency]", "batch_sizes")
    entries = tuple(_entry(f"[[model]] #{i + 1}", e, source) for i, e in enumerate(raw.get("model", [])))
    for i, grid in enumerate(raw.get("grid", [])):
        entries += tuple(_entry(f"[[grid]] #{i + 1}", e, source) for e in _expand(grid, f"[[grid]] #{i + 1}", source))
    if not entries:
        raise ConfigError(f"{source}: no [[model]] or [[grid]] entries")
    labels = [e.label for e in entries]
    duplicated = sorted({lab for lab in labels if labels.count(lab) > 1})
    if duplicated:
        raise ConfigError(f"{source}: model labels must be unique, duplicated: {duplicated}")
    return Experiment(
        dataset=dataset.get("name", "synthetic"),
        dataset_options=dict(dataset.get("options", {})),
        seeds=tuple(seeds),
        train=dict(train),
        latency_batch_sizes=tuple(latency.get("batch_sizes", [1, 4096])),
        entries=entries,
        source=source,
        measure=frozenset(k for k, v in measure.items() if v),
    )


def _int_list(values, low: int, source: str, table: str, key: str) -> None:
    if not isinstance(values, list) or not values or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= low for v in values):
        raise ConfigError(f"{source}: {table} {key} = {values!r}; accepted: a non-empty list of integers >= {low}")


def _train_options(table: dict, source: str, where: str) -> dict:
    """``table`` checked against :data:`TRAIN_OPTIONS`: known keys only, every value of its type and range."""
    _only(table, None, source, where)
    for key in sorted(table):
        if key not in TRAIN_OPTIONS:
            hint = _ELSEWHERE.get(key, "")
            raise ConfigError(f"{source}: {where}: unknown key {key!r}{hint}; accepted: {TRAIN_KEYS}")
    for key, value in table.items():
        if not TRAIN_OPTIONS[key].check(value):
            raise ConfigError(f"{source}: {where} {key} = {value!r}; accepted: {TRAIN_OPTIONS[key].accepted()}")
    return dict(table)


def _expand(grid: dict, where: str, source: str) -> list[dict]:
    """The model entries of a ``[[grid]]``: one per cell of the product of its axes."""
    _only(grid, {"preset", "label", "name", "hparams", "train", "group", "axes"}, source, where)
    axes = grid.get("axes", {})
    if not axes or not all(isinstance(v, list) and v for v in axes.values()):
        raise ConfigError(f"{source}: {where}: axes must map hyperparameter names to non-empty lists, got {axes!r}")
    template = grid.get("label", grid.get("name", grid.get("preset", "")) + " " +
                        ", ".join(f"{a}={{{a}}}" for a in axes))
    cells = []
    for values in itertools.product(*axes.values()):
        cell = dict(zip(axes, values, strict=True))
        try:
            label = template.format(**cell)
        except KeyError as e:
            raise ConfigError(f"{source}: {where}: label {template!r} names {e}, which is not an axis") from None
        entry = {k: v for k, v in grid.items() if k != "axes"}
        cells.append(entry | {"label": label, "hparams": grid.get("hparams", {}) | cell})
    return cells


def _entry(where_in_file: str, raw: dict, source: str) -> ModelEntry:
    where = f"{source}: {where_in_file}"
    _only(raw, {"preset", "label", "name", "hparams", "train", "group"}, source, where_in_file)
    if "preset" in raw:
        if "name" in raw:
            raise ConfigError(f"{where}: give either 'preset' or 'name', not both")
        try:
            preset = models.preset(raw["preset"])
        except KeyError as e:
            raise ConfigError(f"{where}: {e.args[0]}") from None
        name, hparams = preset.model, preset.hparams | raw.get("hparams", {})
        label = raw.get("label", preset.label)
    else:
        if "name" not in raw:
            raise ConfigError(f"{where}: needs 'name' (a registry name: {models.available()}) or 'preset'")
        name, hparams = raw["name"], dict(raw.get("hparams", {}))
        label = raw.get("label", name)
    where = f"{source}: model entry {label!r}"
    train = _train_options(raw.get("train", {}), source, f"model entry {label!r} train")
    try:
        models.build(name, _PROBE_SCHEMA, **hparams)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e.args[0] if e.args else e}") from None
    hparams = canonical(models.defaults(name) | hparams)  # spelled out, so equal models share records
    return ModelEntry(label=label, model=name, hparams=hparams, train=train, group=raw.get("group", ""))


def _only(table: dict, allowed: set | None, source: str, where: str) -> None:
    """``table`` is a table whose keys are all in ``allowed`` (None: any key)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: {where} must be a table, got {table!r}")
    unknown = sorted(set(table) - allowed) if allowed is not None else []
    if unknown:
        raise ConfigError(f"{source}: {where}: unknown key(s) {unknown}; accepted: {sorted(allowed)}")
