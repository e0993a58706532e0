"""Measurements of one implementation (ours or a peer): FLOPs, the roofline, a bare training loop,
one training or latency task, and the interleaved rounds of one case."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import models
from data import Dataset, Schema

from ..engine import contention
from ..engine.fit import fit
from ..engine.latency import random_batch
from ..engine.metrics import evaluate
from ..engine.runtime import make_optimizer
from ..engine.step import train_step
from ..engine.timing import median_ms, timings_ms
from . import peers as peer_registry
from .cases import ARCH, CASES, Settings
from .factors import FACTORS, factor_rows, initialise_embeddings, profile_table
from .quality import best_auc, time_to_quality

ONNX_RUNTIME = "onnxruntime"
ONNX_RUNTIME_IMPL = "ours, ONNX Runtime"  # ours exported to ONNX: a latency entry, not a training one
SHARED_RETRIES = 2  # a task timed while other processes used the CPU runs again, at most this many times


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
    best_ms = min(timings_ms(lambda: torch.mm(a, b), warmup=2, repeats=repeats))
    return 2 * size**3 / (best_ms / 1e3) / 1e9


def roofline_fraction(flops_per_row: float, rows_per_second: float, peak_gflops: float | None) -> float | None:
    """Achieved matrix-product FLOP rate over the peak rate (None when either is unknown or zero)."""
    if not peak_gflops or not flops_per_row:
        return None
    return flops_per_row * rows_per_second / 1e9 / peak_gflops


def bare_loop(
    model, x, y, *, epochs: int, batch_size: int, seed: int, probabilities: bool = False, fused_adam: bool = True,
    after_epoch: Callable[[float], bool] | None = None, lr: float = 1e-3,
) -> float:
    """Training seconds of ``epochs`` of plain minibatch Adam (``lr``, default 1e-3) on ``(x, y)``.

    Batches are slices of a per-epoch permutation, as in ``fit``. ``fused_adam``: fit's Adam
    (one fused kernel); otherwise ``torch.optim.Adam``'s default, as a plain loop uses it.
    ``probabilities``: the model returns click probabilities (BCE) rather than logits.
    ``after_epoch(seconds so far)``: called after each epoch, outside the timed span (an
    evaluation); returning True stops training.
    """
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model, lr=lr, fused=fused_adam)
    seconds = 0.0
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=shuffle)
        xs, ys = x[order], y[order]
        for i in range(0, len(xs), batch_size):
            train_step(model, optimizer, xs[i : i + batch_size], ys[i : i + batch_size], probabilities=probabilities)
        seconds += time.perf_counter() - start
        if after_epoch is not None and after_epoch(seconds):
            break
    return seconds


def quality_history(model, impl: Impl, dataset: Dataset, s: Settings, fused_adam: bool, lr: float = 1e-3,
                    batch_size: int | None = None) -> list[dict]:
    """Bare-loop training (``lr``, ``batch_size``: default ``s.batch_size``) until validation AUC has not
    improved for ``s.quality_patience`` epochs (at most ``s.quality_epochs``): ``[{"seconds": training
    seconds so far, "val_auc": ...}]`` per epoch."""
    history: list[dict] = []
    val_x = impl.encode(dataset.val.x)

    def after_epoch(seconds: float) -> bool:
        auc = evaluate(dataset.val.y, scores(model, val_x, impl.probabilities))["auc"]
        history.append({"seconds": seconds, "val_auc": auc})
        best = max(range(len(history)), key=lambda i: history[i]["val_auc"])
        return len(history) - 1 - best >= s.quality_patience

    bare_loop(model, impl.encode(dataset.train.x), dataset.train.y, epochs=s.quality_epochs,
              batch_size=batch_size or s.batch_size, seed=s.seed, probabilities=impl.probabilities,
              fused_adam=fused_adam, after_epoch=after_epoch, lr=lr)
    return history


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


def factor_history(case: str, factor: dict, dataset: Dataset, s: Settings) -> list[dict]:
    """:func:`quality_history` of ours for ``case`` with one factor changed (see ``benchmarks.speed.factors``)."""
    spec = CASES[case]
    torch.manual_seed(s.seed)
    model = models.build(spec.model, dataset.schema, **{**spec.hparams, **factor.get("hparams", {})})
    if "embedding_init" in factor:
        initialise_embeddings(model, factor["embedding_init"])
    ours = Impl("ours", None, lambda: model, lambda x: x, False)
    return quality_history(model, ours, dataset, s, fused_adam=True, lr=factor.get("lr", 1e-3),
                           batch_size=factor.get("batch_size"))


def built(impl: Impl, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return impl.make()


def execute(task: dict, dataset: Dataset, s: Settings, available: dict[str, str | None]) -> dict:
    """:func:`run_task` with ``contention``: whether other processes used the CPU while it ran
    (:func:`benchmarks.engine.contention.watch` over the task, in the process that runs it)."""
    with contention.watch(s.threads) as during:
        out = run_task(task, dataset, s, available)
    return out | {"contention": during}


def unshared(run: Callable[[dict], dict], task: dict, log) -> dict:
    """``run(task)``, run again (at most :data:`SHARED_RETRIES` times) while its figures were taken on a shared
    CPU; the last result, whose ``contention["shared"]`` says whether it still was."""
    for tries in range(1, SHARED_RETRIES + 2):
        result = run(task)
        during = result["contention"]
        if not during["shared"]:
            break
        others = "-" if during["others"] is None else f"{during['others']:.0%}"
        log(f"  CPU shared while timing {json.dumps(task)}: others took {others} of the machine, load "
            f"{during['load'][0]:.1f} -> {during['load'][1]:.1f}; "
            + ("timing it again" if tries <= SHARED_RETRIES else "kept and marked"))
    return result


def run_task(task: dict, dataset: Dataset, s: Settings, available: dict[str, str | None]) -> dict:
    """Run one measurement task in this process and return its numbers.

    ``{"kind": "train", "case", "impl", "how": "fit" | "bare" | "own", "levers": bool}``: train for
    ``s.epochs`` and score the validation split; ``{"kind": "quality", "case", "impl", "levers": bool}``:
    the per-epoch history of :func:`quality_history`; ``{"kind": "factor", "case", "factor"}``: that history
    of ours with one factor of ``benchmarks.speed.factors.FACTORS`` changed; ``{"kind": "profile", "case",
    "impl"}``: the top operators of its training step; ``{"kind": "latency", "case", "impl", "batch"}``:
    median forward ms (or the error the implementation raised).
    """
    if task["kind"] == "factor":
        return {"history": factor_history(task["case"], FACTORS[task["factor"]], dataset, s)}
    impl = implementations(task["case"], dataset.schema, available)[task["impl"]]
    model = built(impl, s.seed)
    if task["kind"] == "profile":
        x, y = impl.encode(dataset.train.x[: s.batch_size]), dataset.train.y[: s.batch_size]
        optimizer = make_optimizer(model, lr=1e-3, fused=True)

        def step():
            return train_step(model, optimizer, x, y, probabilities=impl.probabilities)

        return {"operators": profile_table(step)}
    if task["kind"] == "latency":
        batch = impl.encode(random_batch(dataset.schema, task["batch"]))
        call = forward_call(model.eval(), batch) if task.get("runtime") != ONNX_RUNTIME else \
            onnx_call(model.eval(), dataset.schema, batch)
        try:
            return {"ms": median_ms(call, warmup=2, repeats=s.latency_repeats)}
        except Exception as e:  # a peer that cannot run this batch size: reported, not fatal
            return {"error": f"fails: {type(e).__name__}: {str(e).splitlines()[0][:80]}"}
    if task["kind"] == "quality":
        return {"history": quality_history(model, impl, dataset, s, fused_adam=task["levers"])}
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


def measure_quality(case: str, impls: list[Impl], local: Callable[[dict], dict],
                    worker: Callable[[dict], dict], log) -> dict:
    """Per-epoch history of every implementation of ``case`` and ours against each peer in time to quality.

    Ours trains in the worker with fit's levers, each peer as shipped in this process, as in the
    samples/s comparison."""
    histories, shared = {}, []
    for index, impl in enumerate(impls):
        task = {"kind": "quality", "case": case, "impl": index, "levers": index == 0}
        result = unshared(worker if index == 0 else local, task, log)
        histories[impl.name] = result["history"]
        shared += [impl.name] if result["contention"]["shared"] else []
        log(f"  {case:10s} {impl.name:80s} best val AUC {best_auc(histories[impl.name]):.4f} "
            f"in {len(histories[impl.name])} epoch(s)")
    comparisons = {impl.name: time_to_quality(histories["ours"], histories[impl.name]) for impl in impls[1:]}
    return {"histories": histories, "versus": comparisons, "shared": shared}


def measure_factors(case: str, worker: Callable[[dict], dict], peer_histories: dict[str, list[dict]], log) -> dict:
    """The factor table of ``case`` (``benchmarks.speed.factors``): each variant's history, trained in the worker."""
    histories = {}
    for factor in FACTORS:
        histories[factor] = unshared(worker, {"kind": "factor", "case": case, "factor": factor}, log)["history"]
        log(f"  {case:10s} factor {factor:60s} epoch 1 {histories[factor][0]['val_auc']:.4f}, "
            f"best {best_auc(histories[factor]):.4f}")
    return {"case": case, "histories": histories, **factor_rows(histories, peer_histories)}


def measure_profiles(cases: list[str], worker: Callable[[dict], dict], log) -> dict:
    """Top operators of our training step for each of ``cases``."""
    return {case: unshared(worker, {"kind": "profile", "case": case, "impl": 0}, log)["operators"] for case in cases}


def measure_case(case: str, impls: list[Impl], local: Callable[[dict], dict], worker: Callable[[dict], dict],
                 s: Settings, rows: int, log) -> tuple[dict, dict, list[str]]:
    """Training (best of ``s.rounds`` interleaved rounds) and forward latency of every implementation of ``case``.

    Each training entry keeps every round's samples/s (``rounds``: the spread is the noise) and ``shared``:
    whether its best round was timed on a CPU that other processes shared even after :func:`unshared`'s
    retries; the third value names the latency figures so timed."""
    training: dict[str, dict] = {}
    for _ in range(s.rounds):
        for key, task, in_worker in _training_plan(case, impls):
            result = unshared(worker if in_worker else local, task, log)
            rate = rows / result["seconds"]
            entry = training.setdefault(key, {"val_auc": result["val_auc"], "samples_per_s": 0.0, "rounds": []})
            entry["rounds"].append(rate)
            if rate > entry["samples_per_s"]:
                entry |= {"samples_per_s": rate, "shared": result["contention"]["shared"]}
            if "train_only_samples_per_s" in result:
                entry["train_only_samples_per_s"] = max(entry.get("train_only_samples_per_s", 0.0),
                                                        result["train_only_samples_per_s"])
            log(f"  {case:10s} {key:80s} {rate / 1e3:8.1f}k rows/s  AUC {result['val_auc']:.4f}")
    served = [(impl.name, index, None) for index, impl in enumerate(impls)]
    if onnxruntime_available():
        served.insert(1, (ONNX_RUNTIME_IMPL, 0, ONNX_RUNTIME))
    latency: dict[str, dict] = {name: {} for name, _, _ in served}
    shared: set[str] = set()
    for _ in range(s.rounds):
        for name, index, runtime in served:
            for batch in (1, 4096):
                result = unshared(worker if index == 0 else local,
                                  {"kind": "latency", "case": case, "impl": index, "batch": batch, "runtime": runtime},
                                  log)
                before = latency[name].get(str(batch))
                value = result.get("ms", result.get("error"))
                if not isinstance(before, float) or (isinstance(value, float) and value < before):
                    latency[name][str(batch)] = value
                    (shared.add if result["contention"]["shared"] else shared.discard)(f"{name}, batch {batch}")
    return training, latency, sorted(shared)


def onnxruntime_available() -> bool:
    """Whether the optional ``serve`` extra (onnx, onnxruntime) is installed."""
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def onnx_call(model: torch.nn.Module, schema, x: torch.Tensor) -> Callable[[], list]:
    """One ONNX Runtime forward of ``x`` through ``model`` exported as :mod:`benchmarks.export` does (same threads)."""
    from ..export import session, to_onnx

    served = session(to_onnx(model, schema))
    feed = {"x": x.numpy()}
    return lambda: served.run(None, feed)


def forward_call(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    def call():
        with torch.inference_mode():
            return model(x)

    return call
