"""Speed report: every family against its peer implementations, side by side, in one process.

    python -m benchmarks.speed              # results/speed.md + results/speed.json (several minutes)
    python -m benchmarks.speed --quick      # small data, one round: checks the machinery in seconds

For each family at one common architecture (:data:`ARCH`) it measures, interleaved so that
machine drift hits everyone alike: training samples/s through ``fit`` and through a bare loop
over the same model, the peers' samples/s (the same bare loop, and their own ``fit`` where they
have one) and validation AUC after the same epochs, forward latency at batch 1 and 4096, peak
training memory (in a fresh process each), FLOPs per sample and the fraction of the measured
matrix-multiply roofline reached. A last section measures the speed levers of ``fit``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tabulate import tabulate
from torch.utils.flop_counter import FlopCounterMode

import data
import models
from data import Dataset, Schema

from . import peers as peer_registry
from .latency import inference_call, random_batch
from .metrics import evaluate
from .records import cpu_model
from .train import autocast, fit, make_optimizer, predict, retain_freed_memory, set_malloc_thresholds

ARCH = {"embed_dim": 16, "hidden_units": (128, 64, 32), "dropout": 0.1, "num_layers": 3, "rank": 16, "num_experts": 4}
_DEEP = {"embed_dim": ARCH["embed_dim"], "hidden_units": ARCH["hidden_units"], "dropout": ARCH["dropout"]}


@dataclass(frozen=True)
class Case:
    label: str
    model: str
    hparams: dict


# The families at the common architecture. DCN-Mix uses the paper's expert form (tanh and C),
# which is what both peers implement.
CASES: dict[str, Case] = {
    "fm": Case("FM", "fm", {"embed_dim": ARCH["embed_dim"]}),
    "ffm": Case("FFM", "ffm", {"embed_dim": ARCH["embed_dim"]}),
    "pnn_inner": Case("PNN, inner", "pnn", {**_DEEP, "product": "inner"}),
    "pnn_outer": Case("PNN, outer", "pnn", {**_DEEP, "product": "outer"}),
    "deepfm": Case("DeepFM", "deepfm", _DEEP),
    "nfm": Case("NFM", "nfm", _DEEP),
    "dcn_v2": Case("DCN-V2, 3 layers", "dcn_v2", {**_DEEP, "num_layers": ARCH["num_layers"]}),
    "dcn_mix": Case(
        "DCN-Mix, 3 layers, r 16, k 4", "dcn_mix",
        {**_DEEP, "num_layers": ARCH["num_layers"], "rank": ARCH["rank"], "num_experts": ARCH["num_experts"],
         "expert_form": "paper"},
    ),
}


@dataclass(frozen=True)
class Target:
    """Ours at least ``ratio`` x the fastest implementation of ``case`` in ``library`` (None: any peer)."""

    case: str
    library: str | None
    ratio: float

    def describe(self) -> str:
        whom = f"{self.library}" if self.library else "the fastest peer"
        return f"{CASES[self.case].label}: ours >= {self.ratio:g}x {whom}"


TARGETS = (
    *(Target(case, None, 1.0) for case in CASES),
    Target("ffm", "pytorch-fm", 3.0),
    Target("pnn_outer", "pytorch-fm", 5.0),
    Target("pnn_outer", "DeepCTR-Torch", 5.0),
    Target("dcn_mix", "FuxiCTR", 2.0),
    Target("dcn_mix", "DeepCTR-Torch", 2.0),
)
FIT_VS_BARE = 0.9  # fit within 10% of the bare loop
ROOFLINE_TARGETS = {"dcn_v2": 0.6}  # training, fraction of the fp32 matrix-multiply rate


@dataclass(frozen=True)
class Settings:
    rows: int = 200_000  # the synthetic set's 80/10/10 split gives 160k training rows
    epochs: int = 1
    batch_size: int = 1024
    rounds: int = 2
    latency_repeats: int = 15
    threads: int = 2
    seed: int = 0
    peers: bool = True
    memory: bool = True
    levers: bool = True
    compile_cases: tuple[str, ...] = ("fm", "deepfm", "dcn_v2")
    parity_seeds: int = 2
    lever_steps: int = 20


QUICK = Settings(rows=5_000, rounds=1, latency_repeats=3, parity_seeds=1, compile_cases=(), lever_steps=3)


# ---- measuring ------------------------------------------------------------------------------------


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matrix products (mm, addmm, bmm, ...) that ``fn()`` runs, by ``FlopCounterMode``.

    Elementwise work (embedding gathers, products of vectors, activations) is not counted.
    """
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def flops_per_sample(model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Matrix-product FLOPs per row of batch ``x``: forward (eval mode) and a training step's forward + backward."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        forward = count_flops(lambda: model(x))
    model.train()

    def step():
        F.binary_cross_entropy_with_logits(model(x).float().view(-1), torch.zeros(len(x))).backward()

    train = count_flops(step)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {"forward": forward / len(x), "train": train / len(x)}


def matmul_rate(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a square ``torch.mm`` of ``size`` in ``dtype``: the roofline of this machine and thread count."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(2):
        torch.mm(a, b)
    best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def roofline_fraction(flops_per_row: float, rows_per_second: float, peak_gflops: float | None) -> float | None:
    """Achieved matrix-product FLOP rate over the peak rate (None when either is unknown or zero)."""
    if not peak_gflops or not flops_per_row:
        return None
    return flops_per_row * rows_per_second / 1e9 / peak_gflops


def cpu_has_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX-BF16), from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_ms(fn: Callable[[], object], warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = sorted(_seconds(fn) for _ in range(repeats))
    return times[len(times) // 2] * 1e3


def bare_loop(
    model, x, y, *, epochs: int, batch_size: int, seed: int, probabilities: bool = False, fused_adam: bool = True
) -> float:
    """Seconds of ``epochs`` of plain minibatch Adam (lr 1e-3) on ``(x, y)``; no evaluation.

    Batches are slices of a per-epoch permutation, as in ``fit``. ``fused_adam``: fit's Adam
    (one fused kernel); otherwise ``torch.optim.Adam``'s default, as a plain loop uses it.
    ``probabilities``: the model returns click probabilities (BCE) rather than logits.
    """
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model, lr=1e-3, fused=fused_adam)
    loss_fn = F.binary_cross_entropy if probabilities else F.binary_cross_entropy_with_logits
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=shuffle)
        xs, ys = x[order], y[order]
        for i in range(0, len(xs), batch_size):
            loss = loss_fn(model(xs[i : i + batch_size]).view(-1), ys[i : i + batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


@torch.inference_mode()
def scores(model, x: torch.Tensor, probabilities: bool, batch_size: int = 4096) -> torch.Tensor:
    """Click probabilities ``[N]`` of the rows ``x`` in eval mode."""
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]).float().view(-1) for i in range(0, len(x), batch_size)])
    return out if probabilities else torch.sigmoid(out)


# ---- one implementation ------------------------------------------------------------------------------


@dataclass
class Impl:
    """Ours or a peer, for one case: how to build it, feed it and read its output."""

    name: str
    library: str | None  # None: ours
    make: Callable[[], torch.nn.Module]
    encode: Callable[[torch.Tensor], torch.Tensor]
    probabilities: bool
    own_fit: Callable | None = None


def implementations(case: str, schema: Schema, available: dict[str, str | None]) -> list[Impl]:
    spec = CASES[case]
    ours = Impl("ours", None, lambda: models.build(spec.model, schema, **spec.hparams), lambda x: x, False)
    theirs = [
        Impl(p.name, p.library, lambda p=p: p.make(schema, ARCH), lambda x, p=p: p.encode(x, schema),
             p.probabilities, p.own_fit)
        for p in peer_registry.peers_for(case, available)
    ]
    return [ours, *theirs]


def _built(impl: Impl, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return impl.make()


# ---- tasks: one measurement of one implementation, run here or in the worker ----------------------------


def execute(task: dict, dataset: Dataset, s: Settings, available: dict[str, str | None]) -> dict:
    """Run one measurement task in this process and return its numbers.

    ``{"kind": "train", "case", "impl", "how": "fit" | "bare" | "own", "levers": bool}``: train for
    ``s.epochs`` and score the validation split; ``{"kind": "latency", "case", "impl", "batch"}``:
    median forward ms (or the error the implementation raised).
    """
    impl = implementations(task["case"], dataset.schema, available)[task["impl"]]
    model = _built(impl, s.seed)
    if task["kind"] == "latency":
        call = _forward_call(model.eval(), impl.encode(random_batch(dataset.schema, task["batch"])))
        try:
            return {"ms": median_ms(call, warmup=2, repeats=s.latency_repeats)}
        except Exception as e:  # a peer that cannot run this batch size: reported, not fatal
            return {"error": f"fails: {type(e).__name__}: {str(e).splitlines()[0][:80]}"}
    out = {}
    if task["how"] == "fit":
        result = fit(model, dataset, batch_size=s.batch_size, max_epochs=s.epochs, patience=s.epochs + 1, seed=s.seed)
        out = {"seconds": result.train_seconds, "train_only_samples_per_s": result.samples_per_second}
    elif task["how"] == "bare":
        out["seconds"] = bare_loop(model, impl.encode(dataset.train.x), dataset.train.y, epochs=s.epochs,
                                   batch_size=s.batch_size, seed=s.seed, probabilities=impl.probabilities,
                                   fused_adam=task["levers"])
    else:
        out["seconds"] = impl.own_fit(model, dataset, s.epochs, s.batch_size)
    out["val_auc"] = evaluate(dataset.val.y, scores(model, impl.encode(dataset.val.x), impl.probabilities))["auc"]
    return out


class Worker:
    """A child interpreter that runs :func:`execute` tasks with ``fit``'s levers in force.

    ``fit`` switches malloc to keep freed memory (``retain_memory``), which is process-wide and
    cannot be switched back to glibc's adaptive default. So our models (and the peers given our
    levers) run in this worker, and the peers as shipped run in the parent, which never changes
    malloc; the two processes take turns, never both at once.
    """

    _TAG = "speed-worker-result "

    def __init__(self, s: Settings, available: dict[str, str | None]):
        arguments = json.dumps({"settings": asdict(s), "available": available})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.speed", "--worker", arguments], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1],
        )

    def __call__(self, task: dict) -> dict:
        self.process.stdin.write(json.dumps(task) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith(self._TAG):
                return json.loads(line[len(self._TAG):])
        raise RuntimeError(f"speed worker exited with code {self.process.wait()} on task {task}")

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()

    @classmethod
    def serve(cls, arguments: str) -> None:
        """The worker's side: tasks from stdin, one JSON result per line on stdout."""
        given = json.loads(arguments)
        s = Settings(**{**given["settings"], "compile_cases": tuple(given["settings"]["compile_cases"])})
        torch.set_num_threads(s.threads)
        retain_freed_memory()
        dataset = data.load("synthetic", rows=s.rows)
        for line in sys.stdin:
            print(cls._TAG + json.dumps(execute(json.loads(line), dataset, s, given["available"])), flush=True)


# The ways each implementation is trained, and where: ours with fit's levers (worker); the peers as
# shipped (torch.optim.Adam's default, glibc's malloc: this process) and with our levers (worker).
def _training_plan(case: str, impls: list[Impl]) -> list[tuple[str, dict, bool]]:
    plan = [("ours: fit", {"how": "fit", "levers": True}, True),
            ("ours: bare loop", {"how": "bare", "levers": True}, True)]
    for index, impl in enumerate(impls[1:], start=1):
        plan += [(f"{impl.name}: bare loop", {"impl": index, "how": "bare", "levers": False}, False),
                 (f"{impl.name}: bare loop, our levers", {"impl": index, "how": "bare", "levers": True}, True)]
        if impl.own_fit is not None:
            plan.append((f"{impl.name}: own fit", {"impl": index, "how": "own", "levers": False}, False))
    return [(key, {"kind": "train", "case": case, "impl": 0, **task}, in_worker) for key, task, in_worker in plan]


def measure_case(case: str, impls: list[Impl], local: Callable[[dict], dict], worker: Callable[[dict], dict],
                 s: Settings, rows: int, log) -> tuple[dict, dict]:
    """Training (best of ``s.rounds`` interleaved rounds) and forward latency of every implementation of ``case``."""
    training: dict[str, dict] = {}
    for _ in range(s.rounds):
        for key, task, in_worker in _training_plan(case, impls):
            result = (worker if in_worker else local)(task)
            entry = training.setdefault(key, {"val_auc": result["val_auc"], "samples_per_s": 0.0})
            entry["samples_per_s"] = max(entry["samples_per_s"], rows / result["seconds"])
            if "train_only_samples_per_s" in result:
                entry["train_only_samples_per_s"] = max(entry.get("train_only_samples_per_s", 0.0),
                                                        result["train_only_samples_per_s"])
            log(f"  {case:10s} {key:80s} {rows / result['seconds'] / 1e3:8.1f}k rows/s  AUC {result['val_auc']:.4f}")
    latency: dict[str, dict] = {impl.name: {} for impl in impls}
    for _ in range(s.rounds):
        for index, impl in enumerate(impls):
            for batch in (1, 4096):
                result = (worker if index == 0 else local)(
                    {"kind": "latency", "case": case, "impl": index, "batch": batch})
                before = latency[impl.name].get(str(batch))
                value = result.get("ms", result.get("error"))
                latency[impl.name][str(batch)] = min(before, value) if isinstance(before, float) and \
                    isinstance(value, float) else value
    return training, latency


def _forward_call(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    def call():
        with torch.inference_mode():
            return model(x)

    return call


# ---- peak memory, in a fresh process per implementation ----------------------------------------------


def resident_kib(field: str) -> int | None:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in KiB, from /proc/self/status; None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_resident() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS (Linux >= 4.0); False where impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return resident_kib("VmHWM") is not None


PROBE_MODES = ("memory", "retain", "default")


def probe(case: str, impl_index: int, threads: int, mode: str, steps: int = 10) -> dict:
    """Run in a fresh process: training memory (``mode="memory"``) or timings with and without
    ``retain_freed_memory`` (``"retain"``, ``"default"``) of one implementation at batch 1024.

    Memory: malloc returns every freed block of 4 KiB or more to the OS, so the resident set
    follows the live memory; after two warm-up steps the kernel's peak-RSS mark (``VmHWM``) is
    reset, and its rise over the next steps is what a step needs beyond the resident state
    (gradients, activations, temporaries). Adding weights and Adam's two moments (3 x 4 bytes
    per parameter) gives the peak training memory.
    """
    torch.set_num_threads(threads)
    if mode == "memory":
        set_malloc_thresholds(4096, 4096)
    elif mode == "retain":
        retain_freed_memory()
    schema = data.load("synthetic", rows=100).schema
    impl = implementations(case, schema, peer_registry.installed())[impl_index]
    model = _built(impl, 0)
    x = impl.encode(random_batch(schema, 1024, seed=1))
    y = (torch.rand(1024, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    optimizer = make_optimizer(model, lr=1e-3)
    loss_fn = F.binary_cross_entropy if impl.probabilities else F.binary_cross_entropy_with_logits

    def step():
        loss = loss_fn(model(x).view(-1), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if mode != "memory":
        step_ms = median_ms(step, warmup=2, repeats=steps)
        model.eval()
        forward_ms = median_ms(_forward_call(model, impl.encode(random_batch(schema, 4096, seed=2))), 2, steps)
        return {"step_ms": step_ms, "forward_4096_ms": forward_ms}
    step()
    step()
    if not reset_peak_resident():
        return {"error": "no /proc/self/clear_refs: peak RSS cannot be reset here"}
    base = resident_kib("VmRSS")
    for _ in range(3):
        step()
    state = 3 * 4 * sum(p.numel() for p in model.parameters())
    return {"train_peak_mib": (resident_kib("VmHWM") - base) / 1024 + state / 2**20, "state_mib": state / 2**20}


def run_probe(case: str, impl_index: int, threads: int, mode: str = "memory") -> dict:
    """:func:`probe` in a fresh interpreter, so that no other model's memory or allocator state interferes."""
    command = [sys.executable, "-m", "benchmarks.speed", "--probe", case, str(impl_index), str(threads), mode]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=Path(__file__).parents[1])
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- levers --------------------------------------------------------------------------------------------


def _step_timer(model, x, y, **step_options) -> Callable[[], None]:
    precision = step_options.pop("precision", "fp32")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **step_options)

    def step():
        with autocast(precision):
            logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _ab(variants: dict[str, Callable[[], None]], rounds: int, steps: int) -> dict[str, float]:
    """Median ms per call of each variant, timed in interleaved blocks of ``steps`` calls."""
    for fn in variants.values():
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(max(rounds, 3)):
        for key, fn in variants.items():
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times[key].append((time.perf_counter() - start) / steps * 1e3)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


def measure_levers(dataset: Dataset, s: Settings, cases: list[str], log) -> list[dict]:
    """Each lever on and off, per family, side by side: ms per training step at batch 1024 (or as stated)."""
    rows: list[dict] = []
    x, y = dataset.train.x[: s.batch_size], dataset.train.y[: s.batch_size]
    steps = s.lever_steps

    def add(lever: str, case: str, timings: dict[str, float], off: str, on: str, note: str = ""):
        rows.append({"lever": lever, "case": case, "off": off, "on": on, "off_ms": timings[off],
                     "on_ms": timings[on], "speedup": timings[off] / timings[on], "note": note})
        log(f"  lever {lever:28s} {case:10s} {off} {timings[off]:.3f} ms -> {on} {timings[on]:.3f} ms")

    def fresh(case):
        torch.manual_seed(s.seed)
        return models.build(CASES[case].model, dataset.schema, **CASES[case].hparams)

    for case in cases:
        timings = _ab({"for-loop": _step_timer(fresh(case), x, y, foreach=False),
                       "foreach": _step_timer(fresh(case), x, y, foreach=True),
                       "fused": _step_timer(fresh(case), x, y, fused=True)}, s.rounds, steps)
        add("Adam implementation", case, timings, "for-loop", "fused")
        add("Adam implementation", case, timings, "foreach", "fused")
        model = fresh(case)
        timings = _ab({"fp32": _step_timer(model, x, y, fused=True),
                       "bf16": _step_timer(model, x, y, fused=True, precision="bf16")}, s.rounds, steps)
        add("bf16 autocast (training)", case, timings, "fp32", "bf16")
        timings = _ab({"fp32": inference_call(model, dataset.schema, 4096),
                       "bf16": inference_call(model, dataset.schema, 4096, "bf16")}, s.rounds, 3)
        add("bf16 autocast (forward 4096)", case, timings, "fp32", "bf16")
        timings = _ab({"off": _step_timer(fresh(case), x, y, fused=True),
                       "on": _flush_denormal(_step_timer(fresh(case), x, y, fused=True))}, s.rounds, steps)
        add("flush denormals", case, timings, "off", "on")
        timings = _ab({"2 threads": _threads(s.threads, _step_timer(fresh(case), x, y, fused=True)),
                       "1 thread": _threads(1, _step_timer(fresh(case), x, y, fused=True))}, s.rounds, steps)
        add(f"1 thread instead of {s.threads}", case, timings, "2 threads", "1 thread")
    for case in (c for c in s.compile_cases if c in cases):
        rows.extend(_compile_lever(case, fresh, x, y, s, steps, log))
    case = "dcn_v2" if "dcn_v2" in cases else cases[0]
    model = fresh(case)
    sizes = (1024, 4096, 16384, 65536)
    timings = _ab({f"batch {b}": (lambda b=b: predict(model, dataset.val, b)) for b in sizes}, s.rounds, 1)
    add("evaluation batch size", case, timings, "batch 16384", "batch 4096",
        f"ms to score the validation split ({len(dataset.val)} rows); "
        + ", ".join(f"batch {b}: {timings[f'batch {b}']:.1f}" for b in sizes))
    return rows


def _flush_denormal(fn):
    def call():
        torch.set_flush_denormal(True)
        try:
            fn()
        finally:
            torch.set_flush_denormal(False)

    return call


def _threads(n: int, fn):
    def call():
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            fn()
        finally:
            torch.set_num_threads(before)

    return call


def _compile_lever(case, fresh, x, y, s, steps, log) -> list[dict]:
    eager, compiled = fresh(case), fresh(case)
    start = time.perf_counter()
    compiled_step = _step_timer(torch.compile(compiled), x, y, fused=True)
    compiled_step()
    seconds = time.perf_counter() - start
    timings = _ab({"eager": _step_timer(eager, x, y, fused=True), "torch.compile": compiled_step}, s.rounds, steps)
    log(f"  lever torch.compile {case}: compile {seconds:.1f} s, {timings}")
    return [{"lever": "torch.compile (inductor)", "case": case, "off": "eager", "on": "torch.compile",
             "off_ms": timings["eager"], "on_ms": timings["torch.compile"],
             "speedup": timings["eager"] / timings["torch.compile"], "note": f"compile time {seconds:.1f} s"}]


def bf16_parity(dataset: Dataset, s: Settings, cases, log) -> list[dict]:
    """``fit`` with fp32 and with bf16 autocast, alternating, over ``s.parity_seeds`` seeds: validation AUC
    after ``s.epochs`` per seed, and the best end-to-end samples/s."""
    out = []
    for case in cases:
        runs = {p: {"auc": [], "samples_per_s": 0.0} for p in ("fp32", "bf16")}
        for seed in range(s.parity_seeds):
            for precision, entry in runs.items():
                torch.manual_seed(seed)
                model = models.build(CASES[case].model, dataset.schema, **CASES[case].hparams)
                result = fit(model, dataset, batch_size=s.batch_size, max_epochs=s.epochs, patience=s.epochs + 1,
                             seed=seed, precision=precision)
                entry["auc"].append(result.history[-1]["val_auc"])
                rate = len(dataset.train) * s.epochs / result.train_seconds
                entry["samples_per_s"] = max(entry["samples_per_s"], rate)
        out.append({"case": case, "fp32_auc": runs["fp32"]["auc"], "bf16_auc": runs["bf16"]["auc"],
                    "fp32_samples_per_s": runs["fp32"]["samples_per_s"],
                    "bf16_samples_per_s": runs["bf16"]["samples_per_s"]})
        log(f"  bf16 parity {case}: {out[-1]}")
    return out


# ---- the whole report -----------------------------------------------------------------------------------


def environment(s: Settings) -> dict:
    return {
        "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
        "cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16": cpu_has_bf16(),
        "cores": os.cpu_count(), "peers": peer_registry.installed() if s.peers else None,
    }


def run(s: Settings, cases: list[str], log=print) -> dict:
    """Every measurement of the report, as one JSON-able dict (see :func:`render`)."""
    torch.set_num_threads(s.threads)
    started = time.perf_counter()
    dataset = data.load("synthetic", rows=s.rows)
    available = peer_registry.installed() if s.peers else {}
    report = {"settings": {**asdict(s), "cases": cases, "arch": ARCH}, "environment": environment(s),
              "roofline_gflops": {"fp32": matmul_rate(torch.float32)}, "cases": {}}
    if cpu_has_bf16():
        report["roofline_gflops"]["bf16"] = matmul_rate(torch.bfloat16)
    worker = Worker(s, available)
    try:
        for case in cases:
            impls = implementations(case, dataset.schema, available)
            log(f"{case}: {len(impls) - 1} peer implementation(s)")
            entry = {"label": CASES[case].label, "model": CASES[case].model, "hparams": CASES[case].hparams,
                     "implementations": [{"name": i.name, "library": i.library} for i in impls],
                     "flops_per_sample": flops_per_sample(_built(impls[0], s.seed), dataset.train.x[:256])}
            entry["training"], entry["latency_ms"] = measure_case(
                case, impls, lambda task: execute(task, dataset, s, available), worker, s,
                len(dataset.train) * s.epochs, log)
            if s.memory:
                entry["memory"] = {impl.name: run_probe(case, i, s.threads) for i, impl in enumerate(impls)}
                entry["allocator"] = {mode: run_probe(case, 0, s.threads, mode) for mode in ("default", "retain")}
            report["cases"][case] = entry
    finally:
        worker.close()
    report["roofline_gflops"]["fp32"] = max(report["roofline_gflops"]["fp32"], matmul_rate(torch.float32))
    if s.levers:  # last: fit switches this process's malloc, and the peers as shipped are done
        report["levers"] = measure_levers(dataset, s, cases, log)
        deep = [c for c in cases if "hidden_units" in CASES[c].hparams]
        report["bf16_parity"] = bf16_parity(dataset, s, deep, log) if cpu_has_bf16() else []
    report["seconds"] = time.perf_counter() - started
    return report


# ---- rendering ----------------------------------------------------------------------------------------------


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
                     "against": peer[0] if peer else "not installed",
                     "ratio_vs_our_levers": ours(entry) / levered[1] if levered else None})
    for entry in report["cases"].values():
        bare = entry["training"]["ours: bare loop"]["samples_per_s"]
        ratio = ours(entry) / bare
        rows.append({"target": f"{entry['label']}: fit >= {FIT_VS_BARE:g}x our bare loop", "ratio": ratio,
                     "met": ratio >= FIT_VS_BARE, "against": "ours: bare loop"})
    for case, goal in ROOFLINE_TARGETS.items():
        entry = report["cases"].get(case)
        if entry is None:
            continue
        fraction = roofline_fraction(entry["flops_per_sample"]["train"], ours(entry), report["roofline_gflops"]["fp32"])
        rows.append({"target": f"{entry['label']}: training >= {goal:.0%} of the fp32 roofline", "ratio": fraction,
                     "met": fraction is not None and fraction >= goal, "against": "fp32 torch.mm rate"})
    return rows


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
        f"{s['threads']} threads, torch {env['torch']}. Run time {report.get('seconds', 0) / 60:.1f} min.",
        f"Data: synthetic, {s['rows']:,} rows (80/10/10 split), batch {s['batch_size']}, {s['epochs']} epoch(s) "
        f"per training run, best of {s['rounds']} interleaved round(s). Common architecture: {_arch(s['arch'])}.",
        "",
        _peers_line(env.get("peers")),
        "",
        f"Roofline (square `torch.mm` of 2048, this run): fp32 {peak['fp32']:.0f} GFLOP/s"
        + (f", bf16 {peak['bf16']:.0f} GFLOP/s." if peak.get("bf16") else "; no native bf16."),
        "",
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
            f"{ours(entry) / t['ours: bare loop']['samples_per_s']:.2f}",
            peer[0].replace(": ", ", ") if peer else "-", _fmt_rate(peer[1]) if peer else "-",
            f"**{ours(entry) / peer[1]:.2f}x**" if peer else "-",
            f"{ours(entry) / levered[1]:.2f}x" if levered else "-",
            f"{t['ours: fit']['val_auc']:.4f}", f"{t[peer[0]]['val_auc']:.4f}" if peer else "-",
        ])
    out += _table(["family", "ours, fit", "fit, training only", "ours, bare", "fit/bare", "fastest peer as shipped",
                   "peer",
                   "ours/peer", "ours/peer with our levers", "AUC ours", "AUC peer"], rows)
    out += ["", "## Targets", ""]
    target_rows = [[t["target"], "-" if t["ratio"] is None else f"{t['ratio']:.2f}",
                    {True: "met", False: "**not met**", None: "not measured"}[t["met"]], t["against"],
                    "-" if t.get("ratio_vs_our_levers") is None else f"{t['ratio_vs_our_levers']:.2f}"]
                   for t in check_targets(report)]
    out += _table(["target", "measured", "status", "against", "vs the peer with our levers"], target_rows)
    out += ["", "## Every implementation", "",
            "Peak train MiB, at batch 1024, in a fresh process per implementation: weights and Adam's two moments "
            "(3 x 4 bytes per parameter) plus the rise of the kernel's peak-RSS mark (`VmHWM`, reset after two "
            "warm-up steps) over three steps, with malloc returning every freed block to the OS so that the "
            "resident set follows the live memory. Forward latency: ours with fit's malloc setting, the peers "
            "as shipped.", ""]
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
                             f"{run_['val_auc']:.4f}", _fmt_ms(lat.get("1")), _fmt_ms(lat.get("4096")),
                             "-" if "train_peak_mib" not in mem else f"{mem['train_peak_mib']:.1f}"])
    out += _table(["family", "implementation", "samples/s", "val AUC", "forward ms, batch 1",
                   "forward ms, batch 4096", "peak train MiB"], rows)
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
]


def write(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    out.write_text(render(report))


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5k rows, one round, no compile: checks the machinery")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {list(CASES)}")
    parser.add_argument("--out", type=Path, default=Path("results/speed.md"), help="markdown; JSON next to it")
    parser.add_argument("--epochs", type=int, help="epochs per training run (default 1)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds, best kept (default 2)")
    parser.add_argument("--threads", type=int, help="torch threads (default 2)")
    parser.add_argument("--no-peers", action="store_true", help="our models only")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-implementation memory processes")
    parser.add_argument("--no-levers", action="store_true", help="skip the lever measurements")
    parser.add_argument("--probe", nargs=4, metavar=("CASE", "IMPL", "THREADS", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        Worker.serve(args.worker)
        return None
    if args.probe:
        case, index, threads, mode = args.probe
        print(json.dumps(probe(case, int(index), int(threads), mode)))
        return None
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; available: {list(CASES)}")
    base = QUICK if args.quick else Settings()
    overrides = {k: v for k, v in {"epochs": args.epochs, "rounds": args.rounds, "threads": args.threads}.items()
                 if v is not None}
    overrides |= {"peers": base.peers and not args.no_peers, "memory": base.memory and not args.no_memory,
                  "levers": base.levers and not args.no_levers}
    report = run(Settings(**{**asdict(base), **overrides}), cases)
    write(report, args.out)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return report


if __name__ == "__main__":
    main()
