"""The leaderboard: a pure function of the run records and the predictions stored beside them (markdown via
tabulate, plots via matplotlib): per data set the default table, its plots and, where tuned, the tuned table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tabulate import tabulate

from data.atomic import write_text_atomically

from ..engine import quality
from ..harness.config import Experiment
from ..harness.records import load_records
from ..harness.sweep import MIN_STEPS
from .common import ALPHA, header, mark_ties, pm, select_runs, summarize
from .plots import plot
from .quality_plots import learning_curve_plot, reliability_plot
from .significance import interval_text, paired_marks, row_interval, row_predictions
from .tuned import tuned_section
from .values import values_sections
from .web import write_page

MARKS = {True: "≈", False: "", None: "n/a"}


def _quality(r: dict) -> list[str]:
    """ECE, calibration ratio and time to quality cells (blank for records older than format 2)."""
    if "test_ece" not in r:
        return ["", "", ""]
    return [f"{r['test_ece']:.4f}", f"{r['test_calibration_ratio']:.3f}",
            f"{r['quality_seconds']:.1f} s / {r['quality_epochs']:.1f}"]


def table(rows: list[dict], oracle: dict | None, batch_sizes: list[str]) -> str:
    headers = ["model", "seeds", "test AUC [95% CI]", "≈ best", "val AUC", "test logloss"]
    if oracle:
        headers.append("gap to oracle")
    headers += ["ECE", "mean pred / rate", "time to quality (s / epochs)", "params"]
    served = any("onnx_latency" in r for r in rows)
    headers += [f"ms @ batch {b}" for b in batch_sizes]
    headers += [f"ORT ms @ batch {b}" for b in batch_sizes] if served else []
    headers += ["train samples/s", "epochs to best"]
    body = []
    for r in sorted(rows, key=lambda r: -r["test_auc"][0] if "test_auc" in r else np.inf):
        if "test_auc" not in r:
            body.append([f"{r['label']} (FAILED {r['failed']}/{r['seeds']})", "; ".join(r["errors"])[:120]]
                        + [""] * (len(headers) - 2))
            continue
        label = r["label"] + (f" ({r['failed']}/{r['seeds']} seeds failed)" if r["failed"] else "")
        cells = [label, str(r["ok"]), interval_text(r["interval"]), MARKS[r.get("tie")], pm(r["val_auc"]),
                 pm(r["test_logloss"])]
        if oracle:
            cells.append(f"{r['test_auc'][0] - oracle['test']['auc']:+.4f}")
        cells += _quality(r) + [f"{r['params']:,}"]
        cells += [f"{r['latency'][b]:.3f}" if b in r["latency"] else "" for b in batch_sizes]
        if served:
            cells += [f"{r['onnx_latency'][b]:.3f}" if b in r.get("onnx_latency", {}) else "" for b in batch_sizes]
        cells += [f"{r['samples_per_second']:,.0f}", f"{r['best_epoch']:.1f}"]
        body.append(cells)
    if oracle:
        row = ["oracle (true probabilities)", "", f"{oracle['test']['auc']:.4f}", "", f"{oracle['val']['auc']:.4f}",
               f"{oracle['test']['logloss']:.4f}", "0"]
        body.append(row + [""] * (len(headers) - len(row)))
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def mark_rows(rows: list[dict], predictions: dict[str, tuple | None], alpha: float) -> str:
    """Set each row's ``interval`` and ``tie`` (≈ best); returns how the marks were made.

    Paired DeLong tests with Holm's correction when every scored row has its test predictions, else
    (older records, splits above the size limit) the seed-only Welch test for all rows.
    """
    scored = [r for r in rows if "test_auc" in r]
    for r in scored:
        r["interval"] = row_interval(r["runs"], predictions[r["label"]], "test")
    if scored and all(predictions[r["label"]] is not None for r in scored):
        marks = paired_marks({r["label"]: predictions[r["label"]] for r in scored}, alpha)
        for r in scored:
            r["tie"] = marks[r["label"]]["close"]
        return "paired"
    mark_ties(rows, alpha)
    return "welch"


def notes(basis: str, alpha: float, onnx_difference: float | None = None) -> list[str]:
    """The bullets explaining the table; the first two sentences explain ≈ best. ``onnx_difference``: the largest
    ONNX Runtime - PyTorch logit difference over the rows served through ONNX Runtime (None: none was)."""
    if basis == "paired":
        marks = (f"≈ best marks rows whose test AUC is not significantly below the best row's: each row is compared "
                 f"with the best on the same test rows by DeLong's paired test over all seeds of both, which counts "
                 f"seed noise and test-set noise. The p-values are Holm-corrected over the rows (α = {alpha}), so "
                 f"a row loses its mark only on evidence that holds for the whole table.")
    else:
        marks = (f"≈ best marks rows whose test AUC is not significantly below the best row's by a one-sided Welch "
                 f"t-test over seeds (α = {alpha}), which sees seed noise only: some rows lack stored predictions "
                 f"for the paired test. n/a where a row has a single seed.")
    return [
        "- Test AUC: mean over seeds with a 95% interval that adds the test set's sampling error (DeLong) to the "
        "seed noise; `*`: seed-only interval (predictions not stored). " + marks,
        f"- ECE: expected calibration error on test over {quality.DEFAULT_BINS} equal-mass bins; mean pred / rate: "
        "mean predicted click probability over the observed click rate (1 = calibrated on average); time to "
        f"quality: training seconds (evaluation excluded) and epochs until validation AUC is within "
        f"{quality.QUALITY_TOLERANCE} of the run's best. Means over seeds.",
        "- Val AUC and logloss: mean ± standard deviation over seeds, on the restored best-validation weights. "
        "Latency: median forward time in inference mode; train samples/s: training steps of `fit`, evaluation "
        "excluded.",
    ] + ([f"- ORT ms: the first seed's trained model exported to ONNX (`benchmarks.export`, opset 17) and run by "
          "ONNX Runtime on the same threads and batch sizes; its logits differ from PyTorch's by at most "
          f"{onnx_difference:.2g} over every row's test split. `python -m benchmarks.export RECORD.json` "
          "repeats it from the weights kept beside the record."] if onnx_difference is not None else [])


class NoRecords(LookupError):
    """No record under the folder matches the experiment."""


def _marks(row: dict, asked: int) -> str:
    """What a reader must know about a row: missing seeds, too few steps, figures timed on a shared CPU."""
    marks = []
    if row["seeds"] < asked:
        marks.append(f"{row['seeds']} of {asked} seeds")
    if (row.get("planned_steps") or MIN_STEPS) < MIN_STEPS:
        marks.append(f"only {row['planned_steps']} steps")
    if row.get("contended"):
        marks.append("timed on a shared CPU")
    return f" ({'; '.join(marks)})" if marks else ""


def render(records: list[dict], experiment: Experiment, out_dir: Path, alpha: float = ALPHA,
           setup: tuple[int, dict, str, int] | None = None, report_dir: Path | None = None) -> str:
    """Markdown of ``experiment`` on every data set variant in ``records`` (predictions read beside the
    records under ``out_dir``); writes the plots into ``report_dir`` (default ``out_dir``).

    ``setup``: the (threads, speed levers, device, world size) whose records to show (None: each section's newest)."""
    report_dir = Path(report_dir or out_dir)
    lines = ["# Leaderboard", "",
             "Generated by `python -m benchmarks.run` from the run records in `records/`; "
             "regenerate with `python -m benchmarks.run --leaderboard`.", "",
             f"Rows marked \"of N seeds\" lack seeds; \"only K steps\": runs planned with fewer than {MIN_STEPS} steps "
             "per run; \"timed on a shared CPU\": other processes took over a quarter of the CPU, or the load "
             "exceeded the cores, while the speed figures were taken.", ""]
    selected = select_runs(records, experiment, setup)
    if not selected:
        raise NoRecords(f"no run records match {experiment.source or 'the config'}; "
                        "train first (e.g. --all)")
    for variant, labels in selected.items():
        runs = [r for rs in labels.values() for r in rs]
        rows = [summarize(label, rs) | {"runs": rs} for label, rs in labels.items()]
        predictions = {label: row_predictions(out_dir, rs, "test") for label, rs in labels.items()}
        basis = mark_rows(rows, predictions, alpha)
        for row in rows:
            row["label"] += _marks(row, len(experiment.seeds))
        oracle = next((r["dataset"]["oracle"] for r in runs if r["dataset"].get("oracle")), None)
        batch_sizes = sorted({b for r in runs if r["status"] == "ok" for b in r["latency"]}, key=int)
        served = [r["onnx_max_abs_difference"] for r in rows if "onnx_max_abs_difference" in r]
        lines += header(variant, runs, notes(basis, alpha, max(served) if served else None))
        lines += [table(rows, oracle, batch_sizes), ""]
        names = plot(rows, report_dir, variant, batch_sizes[-1], oracle and oracle["test"]["auc"]) \
            if any("test_auc" in r for r in rows) and batch_sizes else []
        stored = {label: p for label, p in predictions.items() if p is not None}
        if stored:
            names.append(reliability_plot(stored, report_dir, variant))
        curves = {label: ok[0]["history"] for label, rs in labels.items()
                  if (ok := [r for r in rs if r["status"] == "ok"]) and ok[0].get("history")
                  and "train_seconds" in ok[0]["history"][0]}
        if curves:
            names.append(learning_curve_plot(curves, report_dir, variant))
        if names:
            lines += [" ".join(f"![{n}]({n})" for n in names), ""]
        target = experiment.retarget(runs[0]["dataset"]["name"], runs[0]["dataset"]["options"])
        lines += tuned_section(records, target, out_dir, variant, labels)
    lines += values_sections(selected, out_dir)
    return "\n".join(lines)


def write_leaderboard(out_dir: Path, experiment: Experiment, alpha: float = ALPHA, report_dir: Path | None = None,
                      setup: tuple[int, dict, str, int] | None = None) -> Path:
    """Render the records under ``out_dir`` into ``report_dir`` (default ``out_dir``)/leaderboard.md and the
    same as a web page, index.html."""
    records = load_records(out_dir)
    if not records:
        raise NoRecords(f"no run records under {Path(out_dir) / 'records'}; train first (e.g. --all) or check --out")
    report_dir = Path(report_dir or out_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "leaderboard.md"
    write_text_atomically(path, render(records, experiment, out_dir, alpha, setup, report_dir))
    write_page(path)
    return path
