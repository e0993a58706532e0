"""The reference study reproduced and extended: ``results/study.md``, a pure function of records.

Sections per data set: the DCN-Mix depth x combine grid next to the study's figures, the
comparison of all families (the default config) with the study's parameter counts, the
singular-value spectra of the DCN-V2 cross matrices with the rank-truncation test, the
rank x experts ablation with the expert-form and gate variants, and a factual comparison
with the study's conclusions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tabulate import tabulate

import models
from data.atomic import write_text_atomically

from ..engine.spectrum import min_max
from ..harness.config import Experiment, ModelEntry
from ..harness.records import canonical, load_records
from .common import ALPHA, header, mark_ties, mean_std, plt, pm, select_runs, summarize, welch_p
from .leaderboard import MARKS
from .significance import interval_text, paired_marks, row_interval, row_predictions
from .stats import compare_mean_aucs


def _study_figures(entry: ModelEntry):
    """The study's preset with the same model configuration as ``entry``, or None."""
    every = list(models.STUDY_PRESETS.values()) + list(models.DCN_MIX_TUNING.values())
    return next((p for p in every if p.model == entry.model
                 and canonical(models.defaults(p.model) | p.hparams) == entry.hparams), None)


def _ok(runs: list[dict]) -> list[dict]:
    return [r for r in runs if r["status"] == "ok"]


def _metric(runs: list[dict], name: str) -> list[float]:
    return [r["metrics"][name] for r in _ok(runs)]


def _cell(runs: list[dict] | None) -> str:
    if not runs or not _ok(runs):
        return "not run" if not runs else "failed"
    return f"{pm(mean_std(_metric(runs, 'val_auc')))} (test {pm(mean_std(_metric(runs, 'test_auc')))})"


def grid_section(entries, runs) -> list[str]:
    cells = {(e.hparams["num_layers"], e.hparams["combine"]): e for e in entries}
    depths = sorted({d for d, _ in cells})
    body = []
    for d in depths:
        row = [d]
        for combine in ("parallel", "stacked"):
            entry = cells.get((d, combine))
            row.append(_cell(runs.get(entry.label)) if entry else "not in config")
            study = _study_figures(entry) if entry else None
            row.append(f"{study.study_auc:.4f}" if study and study.study_auc else "")
            ok = _ok(runs.get(entry.label, [])) if entry else []
            row.append(f"{ok[0]['params']:,}" if ok else "")
        body.append(row)
    headers = ["cross layers", "parallel: val AUC (test AUC)", "study", "params",
               "stacked: val AUC (test AUC)", "study", "params"]
    return ["### DCN-Mix: cross layers x combine", "",
            "Validation AUC mean ± std over seeds (test AUC in brackets); `study` is the study's validation AUC "
            "on its private data, which cannot be matched number for number: compare the pattern.", "",
            tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]


def comparison_section(entries, runs) -> list[str]:
    body = []
    for e in entries:
        rs = runs.get(e.label)
        if not rs:
            continue
        row = summarize(e.label, rs)
        study = _study_figures(e)
        if "test_auc" not in row:
            body.append([e.label, "failed"] + [""] * 7)
            continue
        same = "" if not study or not study.study_params else ("yes" if study.study_params == row["params"] else "NO")
        body.append([e.label, pm(row["val_auc"]), pm(row["test_auc"]), f"{row['params']:,}",
                     f"{study.study_params:,}" if study and study.study_params else "", same,
                     f"{study.study_auc:.4f}" if study and study.study_auc else "",
                     *(f"{row['latency'][b]:.3f}" for b in sorted(row["latency"], key=int))])
    batch_sizes = sorted(_ok(next(iter(runs.values())))[0]["latency"], key=int) if runs else []
    headers = ["model", "val AUC", "test AUC", "params", "study params", "equal", "study AUC"]
    headers += [f"ms @ batch {b}" for b in batch_sizes]
    return ["### All families at the study's configurations", "",
            tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]


def spectrum_section(label: str, runs: list[dict], out_dir: Path, variant: str) -> list[str]:
    ok = [r for r in _ok(runs) if r.get("spectrum")]
    if not ok:
        return []
    ranks = ok[0]["spectrum"]["ranks"]
    layers = len(ok[0]["spectrum"]["layers"])

    def over_seeds(layer, when, what, r=None):
        values = [rec["spectrum"]["layers"][layer][when][what] for rec in ok]
        return mean_std([v[str(r)] for v in values] if r is not None else values)

    energy = [[f"W_{layer + 1}"]
              + [f"{over_seeds(layer, 'init', 'energy_share', r)[0]:.3f} → "
                 f"{over_seeds(layer, 'learned', 'energy_share', r)[0]:.3f}" for r in ranks]
              + [f"{over_seeds(layer, 'init', 'effective_rank')[0]:.1f} → "
                 f"{over_seeds(layer, 'learned', 'effective_rank')[0]:.1f}"]
              for layer in range(layers)]
    aucs = [rec["spectrum"]["truncated_val_auc"] for rec in ok]
    truncation = [[f"rank {r}", pm(mean_std([a[str(r)] for a in aucs])),
                   pm(mean_std([a[str(r)] - a["full"] for a in aucs]))] for r in ranks]
    truncation.append(["full (trained)", pm(mean_std([a["full"] for a in aucs])), "0"])
    m = len(ok[0]["spectrum"]["layers"][0]["init"]["singular_values"])
    name = f"{variant}_spectrum_{label.lower().replace(' ', '_').replace(',', '')}.png"
    plot_spectra(ok[0], label, out_dir / name)
    return [f"### Low rank: singular values of the cross matrices of {label}", "",
            f"Each W is {m} x {m}. Energy share of the top r singular values (sum of the r largest s_i^2 over "
            f"the sum of all), at initialisation → at the restored best epoch, mean over {len(ok)} seed(s); "
            "effective rank = exp(entropy of s / sum(s)).", "",
            tabulate(energy, headers=["matrix"] + [f"top {r}" for r in ranks] + ["effective rank"],
                     tablefmt="github", disable_numparse=True), "",
            "Rank truncation without retraining: every trained W replaced by its best rank-r approximation "
            "(truncated SVD); validation AUC and its change against the trained model.", "",
            tabulate(truncation, headers=["W replaced by", "val AUC", "change"], tablefmt="github",
                     disable_numparse=True), "",
            f"![spectra]({name})", ""]


def plot_spectra(record: dict, label: str, path: Path) -> None:
    """One panel per cross layer: min-max normalised spectra at init and learned (the study's figure)."""
    layers = record["spectrum"]["layers"]
    fig, axes = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3.4), squeeze=False)
    for i, (ax, layer) in enumerate(zip(axes[0], layers, strict=True)):
        for when, style in (("init", "--"), ("learned", "-")):
            s = min_max(np.asarray(layer[when]["singular_values"]))
            ax.plot(np.arange(1, len(s) + 1), s, style, label=when)
        ax.set_title(f"W_{i + 1}")
        ax.set_xlabel("index of singular value")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("min-max normalised singular value")
    axes[0][0].legend()
    fig.suptitle(f"{label}, seed {record['key']['seed']}: spectra at init and at the best epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ablation_section(entries, form_entries, runs, reference: tuple[str, list[dict]] | None,
                     out_dir: Path, variant: str) -> list[str]:
    rows = [(e, summarize(e.label, runs[e.label])) for e in entries if e.label in runs]
    if not rows:
        return []

    def line(e, row, first):
        if "test_auc" not in row:
            return first + ["failed", "", "", ""]
        latency = row["latency"][max(row["latency"], key=int)]
        return first + [pm(row["val_auc"]), pm(row["test_auc"]), f"{row['params']:,}", f"{latency:.3f}"]

    tail = ["val AUC", "test AUC", "params", "ms @ largest batch"]
    body = [line(e, row, [e.hparams["rank"], e.hparams["num_experts"]]) for e, row in rows]
    forms = [line(e, summarize(e.label, runs[e.label]), [e.label]) for e in form_entries if e.label in runs]
    name = f"{variant}_ablation_auc_vs_params.png"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for e, row in rows:
        if "test_auc" in row:
            ax.errorbar(row["params"], row["test_auc"][0], yerr=row["test_auc"][1], fmt="o", color="C0", capsize=2)
            ax.annotate(f"r{e.hparams['rank']},k{e.hparams['num_experts']}", (row["params"], row["test_auc"][0]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
    if reference:
        ref = summarize(*reference)
        if "test_auc" in ref:
            ax.errorbar(ref["params"], ref["test_auc"][0], yerr=ref["test_auc"][1], fmt="s", color="C3",
                        capsize=2, label=reference[0])
            ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel("test AUC (mean ± std over seeds)")
    ax.set_title("DCN-Mix, 1 layer, parallel: rank r x experts k")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=110)
    plt.close(fig)
    lines = ["### Ablation: DCN-Mix rank x experts (1 layer, parallel)", "",
             tabulate(body, headers=["rank r", "experts k"] + tail, tablefmt="github", disable_numparse=True), ""]
    if forms:
        lines += ["Expert form and gate at r = 16, k = 4 (the paper's form adds tanh and an r x r matrix C_i in "
                  "the low-rank space):", "",
                  tabulate(forms, headers=["variant"] + tail, tablefmt="github", disable_numparse=True), ""]
    return lines + [f"![ablation]({name})", ""]


def _compare(a: list[dict], b: list[dict], alpha: float, out_dir: Path) -> tuple[str, int, int | None]:
    """'higher/lower by d (Welch p = ..., ...; paired DeLong p = ..., ...)' for mean val AUC of a vs b, both
    tests two-sided, the paired one (seed and validation-set noise) where both have stored val predictions;
    and whether each test found the difference significant (0/1; None: no paired test)."""
    va, vb = _metric(a, "val_auc"), _metric(b, "val_auc")
    diff = float(np.mean(va) - np.mean(vb))
    p = welch_p(va, vb)
    welch = p is not None and p < alpha
    verdict = "Welch n/a with one seed" if p is None else (
        f"Welch p = {p:.3f}, {'significant' if welch else 'within seed noise'}")
    pa, pb = row_predictions(out_dir, a, "val"), row_predictions(out_dir, b, "val")
    paired = None
    if pa is not None and pb is not None:
        p = compare_mean_aucs(pa[0], pa[1], pb[1], "two-sided")["p"]
        paired = p < alpha
        verdict += f"; paired DeLong p = {p:.3f}, {'significant' if paired else 'within seed and validation noise'}"
    text = f"{'higher' if diff > 0 else 'lower'} by {abs(diff):.4f} ({verdict}; α = {alpha})"
    return text, int(welch), None if paired is None else int(paired)


def marks_section(entries, runs, out_dir: Path, alpha: float) -> list[str]:
    """The leaderboard's ≈ best marks (paired DeLong + Holm) beside the seed-only Welch marks, and how many
    rows change; empty unless every row has stored test predictions."""
    labels = {e.label: runs[e.label] for e in entries if e.label in runs}
    rows = [summarize(label, rs) for label, rs in labels.items()]
    scored = [r for r in rows if "test_auc" in r]
    predictions = {r["label"]: row_predictions(out_dir, labels[r["label"]], "test") for r in scored}
    if not scored or any(p is None for p in predictions.values()):
        return []
    mark_ties(scored, alpha)
    paired = paired_marks(predictions, alpha)
    body, changed, comparable = [], 0, 0
    for r in sorted(scored, key=lambda r: -r["test_auc"][0]):
        close = paired[r["label"]]["close"]
        comparable += r["tie"] is not None
        changed += r["tie"] is not None and r["tie"] != close
        body.append([r["label"], pm(r["test_auc"]),
                     interval_text(row_interval(labels[r["label"]], predictions[r["label"]], "test")),
                     MARKS[r["tie"]], MARKS[close], f"{paired[r['label']]['p_holm']:.3f}"])
    headers = ["model", "test AUC (mean ± std over seeds)", "test AUC [95% CI, seeds + test set]",
               "≈ best, Welch (seeds only)", "≈ best, paired DeLong + Holm", "Holm-adjusted p"]
    return ["### Which rows are close to the best: seed noise only vs seed and test-set noise", "",
            f"Welch: one-sided t-test of a row's seeds against the best row's (the leaderboard's mark until "
            f"issue #13). Paired: DeLong's test on the same test rows over all seeds of both rows, Holm-corrected "
            f"over the rows (the leaderboard's mark now). α = {alpha}. **{changed} of {comparable} rows change "
            f"their mark.**", "",
            tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]


def conclusions(grid_entries, comparison_entries, study_runs, comp_runs, alpha: float, out_dir: Path) -> list[str]:
    lines = ["### Against the study's conclusions", ""]
    pairs = {}
    for e in grid_entries:
        pairs.setdefault(e.hparams["num_layers"], {})[e.hparams["combine"]] = study_runs.get(e.label)
    depth_lines, wins, welch, paired = [], 0, 0, []
    for depth, by in sorted(pairs.items()):
        if not (by.get("parallel") and by.get("stacked") and _ok(by["parallel"]) and _ok(by["stacked"])):
            continue
        text, by_welch, by_paired = _compare(by["parallel"], by["stacked"], alpha, out_dir)
        wins += text.startswith("higher")
        welch += by_welch
        paired.append(by_paired)
        depth_lines.append(f"  - {depth} layer(s): parallel {text}.")
    if depth_lines:
        lines += [f"- **Parallel vs stacked.** The study found parallel above stacked at 3 of 4 depths (by at most "
                  f"0.0024). Here parallel is higher at {wins} of {len(depth_lines)} depths; the difference is "
                  f"significant at {welch} by Welch's test (seed noise only)"
                  + ("" if None in paired else f" and at {sum(paired)} by the paired DeLong test (seed and "
                     "validation-set noise)") + ":", *depth_lines]
    by_label = {e.label: comp_runs.get(e.label) for e in comparison_entries}
    mix, v2 = by_label.get("DCN-Mix parallel, 1 layer"), by_label.get("DCN-V2 parallel, 3 layers")
    if mix and v2 and _ok(mix) and _ok(v2):
        m, v = summarize("DCN-Mix", mix), summarize("DCN-V2", v2)
        lat = max(m["latency"], key=int)
        text = _compare(mix, v2, alpha, out_dir)[0]
        lines.append(
            f"- **DCN-Mix vs DCN-V2.** The study: DCN-Mix parallel-1 0.0003 below DCN-V2 parallel-3 in validation "
            f"AUC with 49.5% of its parameters. Here DCN-Mix parallel-1 is {text}, with "
            f"{m['params'] / v['params']:.1%} of the parameters and {m['latency'][lat]:.2f} ms vs "
            f"{v['latency'][lat]:.2f} ms per batch of {lat} (median over seeds).")
    spectral = [r for r in _ok(v2 or []) if r.get("spectrum")]
    if spectral:
        def energy(when):
            return np.mean([np.mean([lay[when]["energy_share"]["16"] for lay in r["spectrum"]["layers"]])
                            for r in spectral])
        drop = np.mean([r["spectrum"]["truncated_val_auc"]["16"] - r["spectrum"]["truncated_val_auc"]["full"]
                        for r in spectral])
        lines.append(
            f"- **Low rank.** The study saw learned spectra decay faster than at initialisation. Here the top 16 "
            f"singular values hold {energy('init'):.1%} of the energy at initialisation and "
            f"{energy('learned'):.1%} after training (mean over layers and seeds); truncating every W to "
            f"rank 16 changes validation AUC by {drop:+.4f} without retraining.")
    return lines + [""]


def render_study(records: list[dict], comparison: Experiment, study: Experiment, out_dir: Path,
                 alpha: float = ALPHA) -> str:
    lines = ["# The reference study, reproduced", "",
             "Generated by `python -m benchmarks.run --study` from the run records in `records/` "
             "(regenerate from records alone with `--study --leaderboard`). The study's own figures are "
             "validation AUC on a private purchase log; ours are on the data set named in each section.", ""]
    comp_all = select_runs(records, comparison)
    shared = {e.label for e in study.entries if any(e.model == c.model and e.hparams == c.hparams
                                                    for c in comparison.entries)}
    partial = []
    for variant, study_runs in select_runs(records, study).items():
        if not set(study_runs) - shared:
            partial.append(variant)  # only records shared with the leaderboard: the study was not run there
            continue
        comp_runs = comp_all.get(variant, {})
        every = [r for rs in list(study_runs.values()) + list(comp_runs.values()) for r in rs]
        lines += header(variant, every, [
            "- AUC and logloss are mean ± standard deviation over seeds, on the restored best-validation weights. "
            "Latency: median forward time in inference mode."])
        target = study.retarget(every[0]["dataset"]["name"], every[0]["dataset"]["options"])
        lines += grid_section(target.group("grid"), study_runs)
        lines += comparison_section(comparison.entries, comp_runs)
        lines += marks_section(comparison.entries, comp_runs, out_dir, alpha)
        for e in comparison.entries:
            lines += spectrum_section(e.label, comp_runs.get(e.label, []), out_dir, variant)
        reference = next(((e.label, comp_runs[e.label]) for e in comparison.entries
                          if e.model == "dcn_v2" and e.label in comp_runs), None)
        lines += ablation_section(target.group("ablation"), target.group("form"), study_runs, reference,
                                  out_dir, variant)
        lines += conclusions(target.group("grid"), comparison.entries, study_runs, comp_runs, alpha, out_dir)
    if partial:
        lines += [f"Not run here (only the leaderboard's records): {', '.join(partial)}; "
                  "`python -m benchmarks.run --study --dataset NAME` adds a section.", ""]
    return "\n".join(lines)


def write_study(out_dir: Path, comparison: Experiment, study: Experiment, alpha: float = ALPHA) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "study.md"
    write_text_atomically(path, render_study(load_records(out_dir), comparison, study, out_dir, alpha))
    return path
