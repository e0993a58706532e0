"""The leaderboard's "numbers as values vs as bins" tables: a pure function of the records and predictions.

Two sections of one data set whose loader options differ only in ``numeric_as``, one with ``"bins"``
(quantile bins, an index each) and one keeping some column as a value (``"value"``, or a per-column
mapping such as ``{"age": "value"}``: one index carrying the normalised number), hold the same rows
in the same splits, so every family is compared with itself on the same test rows: the difference
of mean test AUCs (values minus bins) with an interval from
:func:`benchmarks.reports.stats.compare_mean_aucs` (both sides' seed noise and the paired test-set
noise).
"""

from __future__ import annotations

import json
from pathlib import Path

from scipy import stats as sps
from tabulate import tabulate

from . import stats
from .significance import LEVEL, interval_text, row_interval, row_predictions

OPTION = "numeric_as"
VALUE, BINS = "value", "bins"


def pairs(sections: dict[str, dict[str, list[dict]]]) -> list[tuple[str, str]]:
    """(values variant, bins variant) for every two sections of one data set differing only in ``numeric_as``."""
    described = {}
    for variant, labels in sections.items():
        ds = next(r for rs in labels.values() for r in rs)["dataset"]
        options = dict(ds["info"].get("options", {}))
        how = options.pop(OPTION, None)
        kept = how == VALUE or (isinstance(how, dict) and VALUE in how.values())
        if how == BINS or kept:
            described[variant] = (ds["name"], json.dumps(options, sort_keys=True), kept)
    found = []
    for variant, (name, rest, kept) in described.items():
        if kept:
            found += [(variant, other) for other, described_other in described.items()
                      if described_other == (name, rest, False)]
    return sorted(found)


def _how(labels: dict[str, list[dict]]) -> str:
    """The section's ``numeric_as`` as JSON."""
    ds = next(r for rs in labels.values() for r in rs)["dataset"]
    return json.dumps(ds["info"]["options"][OPTION])


def _difference(values, bins) -> str:
    test = stats.compare_mean_aucs(values[0], values[1], bins[1], alternative="two-sided")
    half = float(sps.t.ppf((1 + LEVEL) / 2, test["df"])) * test["se"]
    return f"{test['diff']:+.4f} [{test['diff'] - half:+.4f}, {test['diff'] + half:+.4f}]", f"{test['p']:.3g}"


def values_sections(sections: dict[str, dict[str, list[dict]]], out_dir: Path) -> list[str]:
    """Markdown lines: one table per (values, bins) pair of ``sections`` ({variant: {label: runs}})."""
    lines = []
    for with_values, with_bins in pairs(sections):
        body = []
        for label, value_runs in sections[with_values].items():
            bin_runs = sections[with_bins].get(label, [])
            if not bin_runs:
                continue
            v, b = row_predictions(out_dir, value_runs, "test"), row_predictions(out_dir, bin_runs, "test")
            difference = _difference(v, b) if v is not None and b is not None else ("", "")
            body.append([label, interval_text(row_interval(value_runs, v, "test")),
                         interval_text(row_interval(bin_runs, b, "test")), *difference])
        name = next(r for rs in sections[with_values].values() for r in rs)["dataset"]["name"]
        lines += [f"## {name}: numbers as values vs as bins", "",
                  f"Same rows, same splits; `{OPTION}={_how(sections[with_values])}` (section `{with_values}`) "
                  f"against `{OPTION}={_how(sections[with_bins])}` (section `{with_bins}`). "
                  "Difference: values minus bins, mean test AUC over "
                  "the seeds, its 95% interval and two-sided p from the paired test on the same test rows "
                  "(seed and test-set noise of both sides).", "",
                  tabulate(body, headers=["model", "values: test AUC [95% CI]", "bins: test AUC [95% CI]",
                                          "values - bins [95% CI]", "p"],
                           tablefmt="github", disable_numparse=True), ""]
    return lines
