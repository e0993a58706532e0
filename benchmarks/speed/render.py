"""The speed report's markdown, a pure function of the dict ``run`` returns, and its targets check."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tabulate import tabulate

from data.atomic import write_text_atomically

from ..engine import contention
from . import peers as peer_registry
from .cases import FIT_VS_BARE, QUALITY_VS_PEER, ROOFLINE_TARGETS, TARGETS
from .measure import ONNX_RUNTIME_IMPL, SHARED_RETRIES, roofline_fraction

AS_SHIPPED = ("bare loop", "own fit")
WITH_OUR_LEVERS = ("bare loop, our levers",)


def fastest_peer(entry: dict, library: str | None = None, ways=AS_SHIPPED) -> tuple[str, float] | None:
    """(key, samples/s) of the fastest way (of ``ways``) any peer, or any peer of ``library``, trained; or None."""
    best = None
    for impl in entry["implementations"]:
        if impl["library"] is None or (library and impl["library"] != library):
            continue
        for key in (f"{impl['name']}: {way}" for way in ways):
            run_ = entry["training"].get(key)
            if run_ and (best is None or run_["samples_per_s"] > best[1]):
                best = (key, run_["samples_per_s"])
    return best


def ours(entry: dict) -> float:
    """Our training samples/s: ``fit`` end to end, its evaluations included."""
    return entry["training"]["ours: fit"]["samples_per_s"]


def check_targets(report: dict) -> list[dict]:
    """Every target of the issue with the measured ratio and whether it is met (None: peer not measured)."""
    rows = []
    for t in TARGETS:
        entry = report["cases"].get(t.case)
        if entry is None:
            continue
        peer = fastest_peer(entry, t.library)
        ratio = ours(entry) / peer[1] if peer else None
        levered = fastest_peer(entry, t.library, WITH_OUR_LEVERS)
        rows.append({"target": t.describe(), "ratio": ratio, "met": None if ratio is None else ratio >= t.ratio,
                     "against": peer[0] if peer else "not installed", "case": entry["label"],
                     "ratio_vs_our_levers": ours(entry) / levered[1] if levered else None,
                     "shared": _shared(entry, "ours: fit", *([peer[0]] if peer else []))})
    for entry in report["cases"].values():
        quality = entry.get("quality", {})
        for peer, q in quality.get("versus", {}).items():
            rows.append({"target": f"{entry['label']}: time to quality >= {QUALITY_VS_PEER:g}x {peer}",
                         "ratio": q["speedup"], "met": q["speedup"] >= QUALITY_VS_PEER,
                         "against": f"{peer}: bare loop", "case": entry["label"],
                         "shared": bool({"ours", peer} & set(quality.get("shared", [])))})
    for entry in report["cases"].values():
        bare = entry["training"]["ours: bare loop"]["samples_per_s"]
        fit_runs = {"evaluations included": ours(entry),
                    "evaluations excluded": entry["training"]["ours: fit"].get("train_only_samples_per_s")}
        for how, rate in fit_runs.items():
            if rate is None:
                continue
            rows.append({"target": f"{entry['label']}: fit ({how}) >= {FIT_VS_BARE:g}x our bare loop",
                         "ratio": rate / bare, "met": rate / bare >= FIT_VS_BARE, "against": "ours: bare loop",
                         "case": entry["label"], "shared": _shared(entry, "ours: fit", "ours: bare loop")})
    for case, goal in ROOFLINE_TARGETS.items():
        entry = report["cases"].get(case)
        if entry is None:
            continue
        fraction = roofline_fraction(entry["flops_per_sample"]["train"], ours(entry), report["roofline_gflops"]["fp32"])
        rows.append({"target": f"{entry['label']}: training >= {goal:.0%} of the fp32 roofline", "ratio": fraction,
                     "met": fraction is not None and fraction >= goal, "against": "fp32 torch.mm rate",
                     "case": entry["label"], "shared": _shared(entry, "ours: fit")})
    return rows


def _shared(entry: dict, *keys: str) -> bool:
    """Whether any of the training figures ``keys`` of ``entry`` was timed on a CPU that others shared."""
    return any(entry["training"][k].get("shared", False) for k in keys)


def shared_figures(report: dict) -> list[str]:
    """Every figure of the report still timed on a shared CPU after the retries, named."""
    named = []
    for entry in report["cases"].values():
        named += [f"{entry['label']}: {k}, samples/s" for k, v in entry["training"].items() if v.get("shared")]
        named += [f"{entry['label']}: {name}, latency" for name in entry.get("latency_shared", [])]
        named += [f"{entry['label']}: {name}, time to quality" for name in entry.get("quality", {}).get("shared", [])]
    if report.get("levers_contention", {}).get("shared"):
        named.append("the levers section")
    return named


def _fmt_ratio(v: float | None, suffix: str = "") -> str:
    """Two decimals, rounded down: a ratio shown as 1.00 is at least 1 (a target's status never contradicts it)."""
    return "-" if v is None else f"{math.floor(v * 100 + 1e-9) / 100:.2f}{suffix}"


def _fmt_rate(v: float | None) -> str:
    return "-" if v is None else f"{v / 1e3:,.0f}k"


def _fmt_ms(v) -> str:
    if isinstance(v, str):
        return v
    return "-" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.2f}")


def _fmt_pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return tabulate(rows, headers=header, tablefmt="github", disable_numparse=True).splitlines()


def render(report: dict) -> str:
    """The markdown report from the dict :func:`run` returns (pure: hand-made dicts render too)."""
    s, env, peak = report["settings"], report["environment"], report["roofline_gflops"]
    out = [
        "# Speed: our families against peer implementations, side by side",
        "",
        "Generated by `python -m benchmarks.speed` (raw numbers: `speed.json` next to this file); do not edit.",
        f"Machine: {env['cpu']} ({env['cpu_capability']}, bf16 {'yes' if env['bf16'] else 'no'}), "
        f"{s['threads']} threads, torch {env['torch']}. Run time {report.get('seconds', 0) / 60:.1f} min"
        + (f" (resumed {report['resumed']} time(s) from its checkpoint)." if report.get("resumed") else "."),
        f"Data: synthetic, {s['rows']:,} rows (80/10/10 split), batch {s['batch_size']}, {s['epochs']} epoch(s) "
        f"per training run, best of {s['rounds']} interleaved round(s). Common architecture: {_arch(s['arch'])}.",
        "",
        _peers_line(env.get("peers")),
        "",
        f"Roofline (square `torch.mm` of 2048, this run): fp32 {peak['fp32']:.0f} GFLOP/s"
        + (f", bf16 {peak['bf16']:.0f} GFLOP/s." if peak.get("bf16") else "; no native bf16."),
        "",
        _contention_line(report),
        "",
        *_render_quality(report),
        *_render_factors(report),
        "## Training: ours against the fastest peer",
        "",
        "samples/s. Ours: `fit` end to end (its per-epoch validation and the final test scoring included), "
        "`fit`'s own training-only figure (evaluations excluded), and a bare loop over the same model, batches "
        "and levers without evaluation; fit/bare compares the end-to-end figure. A peer as shipped: its bare "
        "loop with `torch.optim.Adam`'s default and glibc's default malloc, or its own `fit`, whichever is "
        "faster. 'With our levers': the peer's bare loop given fit's levers (fused Adam, malloc keeping freed "
        "memory), which shows how much of a ratio is the levers and how much the model code. AUC: validation, "
        "after the same epochs.",
        "",
    ]
    rows = []
    for entry in report["cases"].values():
        t = entry["training"]
        peer, levered = fastest_peer(entry), fastest_peer(entry, ways=WITH_OUR_LEVERS)
        rows.append([
            entry["label"], _fmt_rate(ours(entry)), _fmt_rate(t["ours: fit"].get("train_only_samples_per_s")),
            _fmt_rate(t["ours: bare loop"]["samples_per_s"]),
            _fmt_ratio(ours(entry) / t['ours: bare loop']['samples_per_s']),
            peer[0].replace(": ", ", ") if peer else "-", _fmt_rate(peer[1]) if peer else "-",
            f"**{_fmt_ratio(ours(entry) / peer[1], 'x')}**" if peer else "-",
            _fmt_ratio(ours(entry) / levered[1], "x") if levered else "-",
            f"{t['ours: fit']['val_auc']:.4f}", f"{t[peer[0]]['val_auc']:.4f}" if peer else "-",
        ])
    out += _table(["family", "ours, fit", "fit, training only", "ours, bare", "fit/bare", "fastest peer as shipped",
                   "peer",
                   "ours/peer", "ours/peer with our levers", "AUC ours", "AUC peer"], rows)
    out += ["", "## Targets", ""]
    target_rows = [[t["target"], _fmt_ratio(t["ratio"]),
                    {True: "met", False: "**not met**", None: "not measured"}[t["met"]]
                    + (" (CPU shared)" if t.get("shared") else ""), t["against"],
                    _fmt_ratio(t.get("ratio_vs_our_levers"))]
                   for t in check_targets(report)]
    out += _table(["target", "measured", "status", "against", "vs the peer with our levers"], target_rows)
    out += _render_profiles(report)
    out += ["", "## Every implementation", "",
            "samples/s: the best round; 'each round': every interleaved round's figure (their spread is the "
            "machine's noise). Peak train MiB, at batch 1024, in a fresh process per implementation: weights and "
            "Adam's two moments (3 x 4 bytes per parameter) plus the rise of the kernel's peak-RSS mark (`VmHWM`, "
            "reset after two warm-up steps) over three steps, with malloc returning every freed block to the OS so "
            "that the resident set follows the live memory. Forward latency: ours with fit's malloc setting, the "
            "peers as shipped.", ""]
    rows = []
    for entry in report["cases"].values():
        for impl in entry["implementations"]:
            name = impl["name"]
            lat = entry["latency_ms"].get(name, {})
            mem = entry.get("memory", {}).get(name, {})
            for how in ("fit", "bare loop", "bare loop, our levers", "own fit"):
                run_ = entry["training"].get(f"{name}: {how}")
                if run_ is None:
                    continue
                rows.append([entry["label"], f"{name}, {how}", _fmt_rate(run_["samples_per_s"]),
                             ", ".join(_fmt_rate(r) for r in run_.get("rounds", [])) or "-",
                             f"{run_['val_auc']:.4f}", _fmt_ms(lat.get("1")), _fmt_ms(lat.get("4096")),
                             "-" if "train_peak_mib" not in mem else f"{mem['train_peak_mib']:.1f}"])
    out += _table(["family", "implementation", "samples/s", "each round", "val AUC", "forward ms, batch 1",
                   "forward ms, batch 4096", "peak train MiB"], rows)
    out += _render_serving(report)
    out += ["", "## FLOPs and the roofline", "",
            "Matrix-product FLOPs per sample (`torch.utils.flop_counter.FlopCounterMode`: mm, addmm, bmm; "
            "gathers and elementwise work are not counted, so FM and FFM count 0), as executed: DCN-Mix's C runs "
            "as one block-diagonal product, k times the FLOPs of k separate r x r products (9% more in all). "
            "Fraction of the roofline = FLOPs x samples/s over the `torch.mm` rate; training uses our `fit` "
            "samples/s.", ""]
    rows = []
    for entry in report["cases"].values():
        f = entry["flops_per_sample"]
        fwd_ms = entry["latency_ms"]["ours"].get("4096")
        fwd_rate = 4096 / (fwd_ms / 1e3) if isinstance(fwd_ms, float) else None
        rows.append([entry["label"], f"{f['forward'] / 1e3:,.1f}k", f"{f['train'] / 1e3:,.1f}k",
                     _fmt_pct(roofline_fraction(f["forward"], fwd_rate or 0, peak["fp32"])),
                     _fmt_pct(roofline_fraction(f["forward"], fwd_rate or 0, peak.get("bf16"))),
                     _fmt_pct(roofline_fraction(f["train"], ours(entry), peak["fp32"])),
                     _fmt_pct(roofline_fraction(f["train"], ours(entry), peak.get("bf16")))])
    out += _table(["family", "forward FLOP/sample", "train FLOP/sample", "forward 4096, % fp32", "% bf16",
                   "training, % fp32", "% bf16"], rows)
    if report.get("levers"):
        out += _render_levers(report)
    out += ["", "## Method", "", *_METHOD]
    return "\n".join(out) + "\n"


def _contention_line(report: dict) -> str:
    shared = shared_figures(report)
    return (f"CPU sharing: every timed task was watched for other processes' CPU time (more than "
            f"{contention.MAX_OTHERS:.0%} of the machine, or a load above the cores + {contention.LOAD_MARGIN}) and "
            f"timed again, at most {SHARED_RETRIES} times, when it was shared. "
            + (f"Still shared, so marked: {'; '.join(shared)}." if shared else "No figure below was taken on a "
               "shared CPU."))


def _render_serving(report: dict) -> list[str]:
    """Forward latency of ours in eager PyTorch and through ONNX Runtime, per family (empty without the serve extra)."""
    rows = []
    for entry in report["cases"].values():
        eager, served = entry["latency_ms"]["ours"], entry["latency_ms"].get(ONNX_RUNTIME_IMPL)
        if served is None:
            continue
        row = [entry["label"]]
        for batch in ("1", "4096"):
            a, b = eager.get(batch), served.get(batch)
            ratio = f"{a / b:.2f}x" if isinstance(a, float) and isinstance(b, float) else "-"
            row += [_fmt_ms(a), _fmt_ms(b), ratio]
        rows.append(row)
    if not rows:
        return []
    return ["", "## Serving: eager PyTorch and ONNX Runtime", "",
            "Ours exported with `benchmarks.export` (ONNX opset 17, TorchScript exporter), median forward ms on the "
            "same random batch and the same threads; speedup = eager / ONNX Runtime.", "",
            *_table(["family", "eager ms, batch 1", "ORT ms, batch 1", "ORT speedup, 1", "eager ms, batch 4096",
                     "ORT ms, batch 4096", "ORT speedup, 4096"], rows)]


def _render_quality(report: dict) -> list[str]:
    """The headline: per family and peer, training seconds to the common validation AUC and the speedup."""
    rows = []
    for entry in report["cases"].values():
        for peer, q in entry.get("quality", {}).get("versus", {}).items():
            rows.append([entry["label"], peer, f"{q['target_auc']:.4f}",
                         f"{q['ours_seconds']:.1f} ({q['ours_epoch']})", f"{q['peer_seconds']:.1f} ({q['peer_epoch']})",
                         f"**{_fmt_ratio(q['speedup'], 'x')}**", f"{q['ours_best_auc']:.4f}",
                         f"{q['peer_best_auc']:.4f}"])
    if not rows:
        return []
    s = report["settings"]
    return [
        "## Time to quality: ours against each peer",
        "",
        "Training seconds (evaluations excluded) until validation AUC first reaches the target, the lower of the "
        "two best validation AUCs, with the epoch in brackets; speedup = peer seconds / our seconds (above 1: ours "
        f"gets there first). Each implementation trains in the bare loop (Adam lr 1e-3, batch {s['batch_size']}; "
        "ours with fit's levers, peers as shipped) until validation AUC has not improved for "
        f"{s['quality_patience']} epochs, at most {s['quality_epochs']}.",
        "",
        *_table(["family", "peer", "target AUC", "ours s (epoch)", "peer s (epoch)", "speedup", "best AUC ours",
                 "best AUC peer"], rows),
        "",
    ]


def _render_factors(report: dict) -> list[str]:
    """One factor at a time of ours on the factor case: what makes the first epochs slower."""
    f = report.get("factors")
    if not f:
        return []
    rows = [[r["factor"], f"{r['epoch1_auc']:.4f}", f"{r['best_auc']:.4f} ({r['best_epoch']})",
             "not reached" if r["seconds"] is None else f"{r['seconds']:.1f} ({r['epoch']})",
             "-" if r["vs_as_is"] is None else f"{r['vs_as_is']:.2f}x"] for r in f["rows"]]
    label = report["cases"][f["case"]]["label"]
    return [
        f"## First epochs: one factor at a time ({label}, ours)",
        "",
        f"Each row changes one thing of ours and trains as in the table above. Target: validation AUC "
        f"{f['target_auc']:.4f} (the best of the peers there). 'vs as is': seconds of ours as it is over the row's "
        "seconds (above 1: the change gets there sooner).",
        "",
        *_table(["factor", "val AUC after epoch 1", "best val AUC (epoch)", "seconds to target (epoch)",
                 "vs as is"], rows),
        "",
    ]


def _render_profiles(report: dict) -> list[str]:
    """``torch.profiler`` tables of our training step for the profiled families with a target not met."""
    unmet = {t["case"] for t in check_targets(report) if t["met"] is False}
    out = []
    for case, operators in report.get("profiles", {}).items():
        label = report["cases"][case]["label"]
        if label not in unmet:
            continue
        rows = [[o["operator"], f"{o['self_ms_per_step']:.3f}", f"{o['share']:.0%}", f"{o['calls_per_step']:g}"]
                for o in operators]
        out += ["", f"### Profile: {label}, one training step of ours (a target above is not met)", "",
                "`torch.profiler`, CPU, the top operators by self time; ms and calls per step at batch "
                f"{report['settings']['batch_size']}.", ""]
        out += _table(["operator", "self ms / step", "share of the step", "calls / step"], rows)
    return out


def _render_levers(report: dict) -> list[str]:
    out = ["", "## Levers", "",
           "ms per training step at batch 1024 (or as stated), each variant timed in interleaved blocks; "
           "speedup = off/on (> 1: the lever helps).", ""]
    rows = [[r["lever"], r["case"], f"{r['off']}: {_fmt_ms(r['off_ms'])}", f"{r['on']}: {_fmt_ms(r['on_ms'])}",
             f"{r['speedup']:.2f}", r["note"]] for r in report["levers"]]
    out += _table(["lever", "family", "off", "on", "speedup", "note"], rows)
    allocator = [(e["label"], e["allocator"]["default"], e["allocator"]["retain"])
                 for e in report["cases"].values() if "allocator" in e]
    if allocator:
        out += ["", "malloc keeping freed memory (`retain_memory`; a fresh process each way): ms per training "
                "step at batch 1024 and per forward at 4096, glibc's default -> retained.", ""]
        rows = [[label, f"{off['step_ms']:.3f} -> {on['step_ms']:.3f}",
                 f"{off['forward_4096_ms']:.2f} -> {on['forward_4096_ms']:.2f}"]
                for label, off, on in allocator if "error" not in on and "error" not in off]
        out += _table(["family", "training step ms", "forward 4096 ms"], rows)
    if report.get("bf16_parity"):
        peak = report["roofline_gflops"]
        out += ["", "`fit` with bf16 autocast (`precision=\"bf16\"`) against fp32, alternating, one run per seed: "
                "validation AUC per seed after the same epochs, best end-to-end samples/s, and the training FLOP "
                "rate as a fraction of the fp32 and bf16 rooflines.", ""]
        rows = []
        for p in report["bf16_parity"]:
            entry = report["cases"].get(p["case"], {})
            flops = entry.get("flops_per_sample", {}).get("train", 0.0)
            rows.append([entry.get("label", p["case"]), ", ".join(f"{a:.4f}" for a in p["fp32_auc"]),
                         ", ".join(f"{a:.4f}" for a in p["bf16_auc"]), _fmt_rate(p["fp32_samples_per_s"]),
                         _fmt_rate(p["bf16_samples_per_s"]), f"{p['bf16_samples_per_s'] / p['fp32_samples_per_s']:.2f}",
                         _fmt_pct(roofline_fraction(flops, p["bf16_samples_per_s"], peak["fp32"])),
                         _fmt_pct(roofline_fraction(flops, p["bf16_samples_per_s"], peak.get("bf16")))])
        out += _table(["family", "AUC fp32", "AUC bf16", "fp32 fit", "bf16 fit", "speedup", "bf16 training, % fp32",
                       "% bf16"], rows)
    return out


def _arch(arch: dict) -> str:
    return (f"embedding {arch['embed_dim']}, MLP {tuple(arch['hidden_units'])} with BatchNorm and dropout "
            f"{arch['dropout']} where the family has one, {arch['num_layers']} cross layers, DCN-Mix rank "
            f"{arch['rank']} with {arch['num_experts']} experts in the paper's form (tanh and C, as the peers)")


def _peers_line(versions: dict | None) -> str:
    if versions is None:
        return "Peers: not measured (`--no-peers`)."
    missing = [lib for lib, v in versions.items() if not v]
    present = [f"{lib} {v}" for lib, v in versions.items() if v]
    line = "Peers: " + (", ".join(present) if present else "none installed") + "."
    if missing:
        line += (f" Not installed, so not compared: {', '.join(missing)} (install with "
                 f"`{peer_registry.INSTALL_HINT}`).")
    return line


_METHOD = [
    "- One thread setting and one data split, batch size and seed for all. `fit` switches malloc process-wide "
    "(`retain_memory`), so ours and the peers given our levers run in a worker process and the peers as shipped "
    "in the parent, which never touches malloc; the two take turns within each round, ours and the peers "
    "alternating, and the best of the rounds is kept, so drift of the machine hits everyone alike.",
    "- pytorch-fm and DeepCTR-Torch models are used whole. FuxiCTR's pip package has layers but no models: its "
    "`CrossNetV2` / `CrossNetMix` and `MLP_Block` are composed as its model zoo's DCNv2 does, over one "
    "`nn.Embedding`. DeepCTR-Torch's version check is stubbed so that no request runs while timing, and its L2 "
    "penalties are off (ours has none). DeepCTR-Torch's PNN and NFM have no BatchNorm option.",
    "- Latency: median of repeated forward calls in inference mode on one fixed random batch; "
    "'fails' is the error the implementation raised.",
    "- Ratios are rounded down to two decimals, so that one shown as 1.00 is at least 1. The report so far is "
    "saved after each family and section (`speed.partial.json` beside it): a run stopped or crashed resumes there "
    "when rerun with the same settings by the same clean commit.",
]


def write(report: dict, out: Path) -> None:
    """``out`` (markdown) and the raw numbers beside it (``.json``), each written atomically."""
    write_text_atomically(out.with_suffix(".json"), json.dumps(report, indent=1, default=str) + "\n")
    write_text_atomically(out, render(report))
