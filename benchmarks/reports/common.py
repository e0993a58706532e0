"""What the reports share: selecting a config's runs from the records, per-label summaries over seeds,
the Welch test, number formatting, the per-data-set header, and matplotlib set up for files (Agg)."""

from __future__ import annotations

import json
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401  (re-exported: the reports plot through it)
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from ..harness.config import Experiment  # noqa: E402

ALPHA = 0.05


CONFIG_FIELDS = ("format", "dataset", "dataset_options", "model", "hparams", "train")


def _config_part(key: dict) -> dict:
    return {k: key.get(k) for k in CONFIG_FIELDS}


def _setup(key: dict) -> str:
    """Threads, levers, device and world size (the last two are in a key only off one CPU process)."""
    return json.dumps([key["threads"], key["levers"], key.get("device", "cpu"), key.get("world_size", 1)],
                      sort_keys=True)


def select_runs(records: list[dict], experiment: Experiment, setup: tuple[int, dict, str, int] | None = None
                ) -> dict[str, dict[str, list[dict]]]:
    """``{variant: {label: records}}``: for every data set variant among ``records``, the seeds in
    ``experiment.seeds`` of each entry of ``experiment`` (retargeted to that data set), labelled as
    the experiment labels them; the experiment's own data set comes first.

    ``setup``: (threads, speed levers, device, world size) to keep; None keeps the newest setting of each section, so
    a section never mixes thread counts or levers.
    """
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r["key"]["seed"] in experiment.seeds:
            by_variant[r["dataset"]["variant"]].append(r)
    fields = ("threads", "levers", "device", "world_size")
    wanted_setup = None if setup is None else _setup(dict(zip(fields, setup, strict=True)))
    selected = {}
    for variant, runs in sorted(by_variant.items(), key=lambda kv: (kv[1][0]["dataset"]["name"] != experiment.dataset,
                                                                    kv[0])):
        ds = runs[0]["dataset"]
        target = experiment.retarget(ds["name"], ds["options"])
        wanted = defaultdict(list)  # two labels of one configuration share its records
        for entry in target.entries:
            wanted[_json(_config_part(target.key(entry, seed=0, threads=0)))].append(entry.label)
        matching = [r for r in runs if _json(_config_part(r["key"])) in wanted]
        if not matching:
            continue
        setups = defaultdict(list)
        for r in matching:
            setups[_setup(r["key"])].append(r)
        if wanted_setup is None:
            wanted_setup_here = max(setups, key=lambda s: max(r["environment"]["created"] for r in setups[s]))
        else:
            wanted_setup_here = wanted_setup
        labels = defaultdict(list)
        for r in sorted(setups.get(wanted_setup_here, []), key=lambda r: r["key"]["seed"]):
            for label in wanted[_json(_config_part(r["key"]))]:
                labels[label].append(r)
        order = [e.label for e in target.entries if e.label in labels]
        if labels:
            selected[variant] = {label: labels[label] for label in order}
    return selected


def _json(value) -> str:
    return json.dumps(value, sort_keys=True)


def mean_std(values) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def summarize(label: str, runs: list[dict]) -> dict:
    """Mean and spread over the seeds of one model entry; failed seeds are counted, not averaged."""
    ok = [r for r in runs if r["status"] == "ok"]
    failed = [r for r in runs if r["status"] != "ok"]
    row = {"label": label, "seeds": len(runs), "ok": len(ok), "failed": len(failed),
           "errors": sorted({r["error"] for r in failed})}
    if not ok:
        return row
    metric = {m: [r["metrics"][m] for r in ok] for m in ok[0]["metrics"]}
    row.update({
        "test_aucs": metric["test_auc"],
        "val_auc": mean_std(metric["val_auc"]),
        "test_auc": mean_std(metric["test_auc"]),
        "test_logloss": mean_std(metric["test_logloss"]),
        "params": ok[0]["params"],
        "latency": {b: float(np.median([r["latency"][b]["median_ms"] for r in ok])) for b in ok[0]["latency"]},
        "samples_per_second": float(np.median([r["train_samples_per_second"] for r in ok])),
        "best_epoch": float(np.mean([r["best_epoch"] for r in ok])),
        "planned_steps": min((r["planned_steps"] for r in ok if "planned_steps" in r), default=None),
        "contended": any(part.get("shared") for r in ok for part in r.get("contention", {}).values()),
    })
    served = next((r["serve"] for r in ok if (r.get("serve") or {}).get("latency")), None)
    if served is not None:  # the first seed's model through ONNX Runtime (the serve measure)
        row["onnx_latency"] = {str(t["batch_size"]): t["onnxruntime_ms"] for t in served["latency"]}
        row["onnx_max_abs_difference"] = served["max_abs_difference"]
    for name in ("test_ece", "test_calibration_ratio", "quality_seconds", "quality_epochs"):
        if name in metric:  # recorded from record format 2 on
            row[name] = float(np.mean(metric[name]))
    return row


def welch_p(a, b, alternative: str = "two-sided") -> float | None:
    """p-value of Welch's t-test of mean(a) vs mean(b); None with fewer than two values a side.

    Identical constant samples (zero variance, equal means) give p = 1.
    """
    if len(a) < 2 or len(b) < 2:
        return None
    p = stats.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue
    return 1.0 if np.isnan(p) else float(p)


def mark_ties(rows: list[dict], alpha: float = ALPHA) -> None:
    """Set ``row["tie"]``: True when its test AUC is not significantly below the best row's.

    One-sided Welch t-test over seeds; None where fewer than two seeds make a test impossible.
    """
    scored = [r for r in rows if "test_auc" in r]
    if not scored:
        return
    best = max(scored, key=lambda r: r["test_auc"][0])
    for r in scored:
        if r is best:
            r["tie"] = True
        else:
            p = welch_p(r["test_aucs"], best["test_aucs"], alternative="less")
            r["tie"] = None if p is None else p >= alpha


def pm(ms: tuple[float, float], digits: int = 4) -> str:
    return f"{ms[0]:.{digits}f} ± {ms[1]:.{digits}f}"


def _placement(runs: list[dict]) -> str:
    """``**device**: <name>, N process(es); `` where a run left one CPU process (empty otherwise)."""
    placed = sorted({(r["environment"].get("device", "cpu"), r["environment"].get("world_size", 1)) for r in runs})
    if placed == [("cpu", 1)]:
        return ""
    return "**device**: " + ", ".join(f"{d} x {n} process(es)" for d, n in placed) + "; "


def header(variant: str, runs: list[dict], notes: list[str]) -> list[str]:
    """The data set and run-environment bullets of a report section, then ``notes`` (bullets explaining its tables)."""
    ds = runs[0]["dataset"]
    info = ds["info"]
    env = runs[0]["environment"]
    seeds = sorted({r["key"]["seed"] for r in runs})
    commits = sorted({r["environment"]["git_commit"] for r in runs})
    threads = sorted({r["key"]["threads"] for r in runs})
    created = max(r["environment"]["created"] for r in runs)
    rows = info.get("rows", {})
    rate = info.get("positive_rate", {})
    title = ds["name"] + (" (" + ", ".join(f"{k}={v}" for k, v in sorted(ds["options"].items())) + ")"
                          if ds["options"] else "")
    lines = [
        f"## {title}",
        "",
        f"- **Data**: `{ds['name']}`" + (f" with options `{json.dumps(ds['options'])}`" if ds["options"] else "")
        + f"; rows train / val / test = {' / '.join(f'{rows.get(s, 0):,}' for s in ('train', 'val', 'test'))}; "
        + f"positive rate {' / '.join(f'{rate.get(s, 0):.3f}' for s in ('train', 'val', 'test'))}; "
        + f"split: {info.get('split_rule', 'n/a')}; source: {info.get('source', 'n/a')}.",
    ]
    if info.get("oov_rate", {}).get("test"):
        oov = sorted(info["oov_rate"]["test"].items(), key=lambda kv: -kv[1])[:4]
        lines.append("- **Out-of-vocabulary rate on test** (highest fields): "
                     + ", ".join(f"{f} {v:.1%}" for f, v in oov) + ".")
    levers = sorted({", ".join(f"{k}={v}" for k, v in sorted(r["key"]["levers"].items())) or "none" for r in runs})
    lines += [
        f"- **Seeds**: {', '.join(map(str, seeds))}; **CPU**: {env['cpu']}, {'/'.join(map(str, threads))} "
        f"thread(s); {_placement(runs)}**torch** {env['torch']}; **commit** {', '.join(commits)}; "
        f"**generated** {created[:10]}; "
        f"**speed levers**: {'; '.join(levers)}.",
        *notes,
        "",
    ]
    return lines
