"""The leaderboard's "tuned at equal budget" table: a pure function of the tuning manifest and the records.

Per family: the values its search chose, the tuned configuration's test AUC over the experiment's
seeds with its interval, and the gain over the default configuration with the interval of the
difference (:func:`benchmarks.reports.stats.compare_mean_aucs`, both sides' seed and test-set noise).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from scipy import stats as sps
from tabulate import tabulate

from ..harness.config import Experiment, ModelEntry
from ..harness.tune import read_manifest
from . import stats
from .common import select_runs
from .significance import LEVEL, interval_text, row_interval, row_predictions


def tuned_entries(manifest: dict) -> dict[str, ModelEntry]:
    """Family -> its best trial's configuration (families whose trials all failed are left out)."""
    entries = {}
    for family, found in manifest["families"].items():
        if found["best"] is not None:
            best = found["trials"][found["best"]]
            entries[family] = ModelEntry(f"{family} tuned", best["model"], best["hparams"], best["train"])
    return entries


def _value(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _gain(tuned, default) -> str:
    """Mean difference tuned - default with its ``LEVEL`` interval, or '' when either side lacks predictions."""
    if tuned is None or default is None:
        return ""
    test = stats.compare_mean_aucs(tuned[0], tuned[1], default[1])
    half = float(sps.t.ppf((1 + LEVEL) / 2, test["df"])) * test["se"]
    return f"{test['diff']:+.4f} [{test['diff'] - half:+.4f}, {test['diff'] + half:+.4f}]"


def tuned_section(records: list[dict], experiment: Experiment, out_dir: Path, variant: str,
                  defaults: dict[str, list[dict]]) -> list[str]:
    """Markdown lines of the tuned table of ``variant`` (empty when it was not tuned); ``defaults``:
    the leaderboard's runs per label, for the gain."""
    manifest = read_manifest(out_dir, experiment)
    if manifest is None:
        return []
    entries = tuned_entries(manifest)
    selected = select_runs(records, replace(experiment, entries=tuple(entries.values()))).get(variant, {})
    body = []
    for family, found in manifest["families"].items():
        entry = entries.get(family)
        runs = selected.get(entry.label, []) if entry else []
        if not runs:
            body.append([family, f"all {manifest['trials']} trials failed" if entry is None else "not rerun yet"]
                        + [""] * 4)
            continue
        best = found["trials"][found["best"]]
        tuned = row_predictions(out_dir, runs, "test")
        default_runs = defaults.get(found["default"], [])
        default = row_predictions(out_dir, default_runs, "test") if default_runs else None
        body.append([family, ", ".join(f"{k}={_value(v)}" for k, v in best["values"].items()),
                     len([r for r in runs if r["status"] == "ok"]),
                     interval_text(row_interval(runs, tuned, "test")),
                     interval_text(row_interval(default_runs, default, "test")) if default_runs else "not run",
                     _gain(tuned, default)])
    headers = ["family", "chosen (best validation AUC)", "seeds", "tuned test AUC [95% CI]",
               "default test AUC [95% CI]", "gain [95% CI]"]
    return [f"### Tuned at equal budget ({manifest['trials']} trials per family)", "",
            f"Each family: {manifest['trials']} trials of a seeded TPE search (Optuna; the first "
            f"{manifest['startup_trials']} random) over its space in `benchmarks/configs/tune.toml`, chosen on "
            f"{manifest['selection']}, then rerun with every seed. Gain: tuned minus default test AUC; its interval "
            "counts seed and test-set noise of both (intervals marked * are seed-only).", "",
            tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
