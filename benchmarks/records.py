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
import platform
import subprocess
import tempfile
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

RECORD_FORMAT = 1


def record_key(*, dataset: str, dataset_options: dict, model: str, hparams: dict, train: dict,
               seed: int, threads: int, levers: dict | None = None) -> dict:
    """Everything that determines a run's result, as a JSON-able dict."""
    return canonical({
        "format": RECORD_FORMAT, "dataset": dataset, "dataset_options": dataset_options, "model": model,
        "hparams": hparams, "train": train, "seed": seed, "threads": threads, "levers": levers or {},
    })


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


def write_record(path: Path, record: dict) -> None:
    """Write ``record`` as JSON via a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True, default=float)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> dict | None:
    """The record at ``path``, or None when it is absent or unreadable (a rerun replaces it)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def load_records(out_dir: Path) -> list[dict]:
    """Every readable record under ``out_dir/records``, in a stable order."""
    paths = sorted((Path(out_dir) / "records").glob("*/*.json"))
    return [r for r in map(read_record, paths) if r is not None]


def environment(threads: int) -> dict:
    import numpy
    import pandas
    import sklearn
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "sklearn": sklearn.__version__,
        "threads": threads,
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "git_commit": git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def git_commit() -> str:
    """Short commit of the code that ran, with ``+dirty`` when tracked files differ from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "data", "models",
                                "benchmarks"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")
