"""Run records: one JSON file per (data set, model configuration, seed), written atomically.

A record's file name carries a hash of everything that determines its result (data set
and options, registry name and hyperparameters, training settings, seed, thread count,
speed levers, record format). Labels belong to configs, not records: two configs that
name the same model configuration differently share its records. Leaderboards and the
study report are pure functions of the records and the config that selects them.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

from data.atomic import write_text_atomically

RECORD_FORMAT = 2  # 2: predictions beside the record, calibration and time to quality in its metrics


def record_key(*, dataset: str, dataset_options: dict, model: str, hparams: dict, train: dict,
               seed: int, threads: int, levers: dict | None = None, device: str = "cpu",
               world_size: int = 1) -> dict:
    """Everything that determines a run's result, as a JSON-able dict.

    ``device`` (``cpu``, ``cuda``) and ``world_size`` (data-parallel processes) enter the key only where
    they differ from one CPU process, so the keys (and file names) of earlier CPU records stay as they were.
    """
    placement = {"device": device} if device != "cpu" else {}
    placement |= {"world_size": world_size} if world_size != 1 else {}
    return canonical({
        "format": RECORD_FORMAT, "dataset": dataset, "dataset_options": dataset_options, "model": model,
        "hparams": hparams, "train": train, "seed": seed, "threads": threads, "levers": levers or {},
    } | placement)


def canonical(value):
    """``value`` as it reads back from JSON (tuples become lists), for comparing keys."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def key_hash(key: dict) -> str:
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def dataset_variant(dataset: str, options: dict) -> str:
    """Folder name of a data set's records: its name, plus a hash when options are given."""
    return f"{dataset}-{key_hash(options)[:6]}" if options else dataset


def record_path(out_dir: Path, key: dict) -> Path:
    """Where the record of ``key`` lives: one file per key, whatever label a config gives it."""
    folder = dataset_variant(key["dataset"], key["dataset_options"])
    return Path(out_dir) / "records" / folder / f"{key['model']}-seed{key['seed']}-{key_hash(key)}.json"


def weights_path(path: Path) -> Path:
    """Where the trained ``state_dict`` of the record at ``path`` is kept (``serve`` measure): suffix ``.pt``."""
    return Path(path).with_suffix(".pt")


def write_record(path: Path, record: dict) -> None:
    """Write ``record`` as JSON via a temporary file and an atomic rename."""
    write_text_atomically(path, json.dumps(record, indent=1, sort_keys=True, default=float) + "\n")


class DamagedRecord(UserWarning):
    """A record file that is not a complete record; it was moved aside and its run is redone."""


REQUIRED = ("key", "status", "label", "dataset", "environment")


def read_record(path: Path, required: tuple[str, ...] = REQUIRED) -> dict | None:
    """The record at ``path``, or None when it is absent or damaged.

    A damaged file (not JSON, truncated, or lacking a field of ``required``) is renamed to
    ``<name>.damaged`` with a :class:`DamagedRecord` warning naming it, so a rerun replaces it.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        problem = f"not valid JSON ({e})"
    else:
        missing = [k for k in required if k not in record] if isinstance(record, dict) else list(required)
        if not missing:
            return record
        problem = f"lacks {missing}"
    aside = path.with_name(path.name + ".damaged")
    os.replace(path, aside)
    warnings.warn(DamagedRecord(f"damaged record {path}: {problem}; moved to {aside.name}, its run will be redone"),
                  stacklevel=2)
    return None


def load_records(out_dir: Path) -> list[dict]:
    """Every readable record under ``out_dir/records``, in a stable order."""
    paths = sorted((Path(out_dir) / "records").glob("*/*.json"))
    return [r for r in map(read_record, paths) if r is not None]
