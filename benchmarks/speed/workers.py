"""Child processes of the speed report: the worker that runs tasks with ``fit``'s levers in force, and
the fresh-process probe of one implementation's peak training memory and allocator timings."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import torch

import data

from ..engine.latency import random_batch
from ..engine.runtime import make_optimizer, retain_freed_memory, set_malloc_thresholds
from ..engine.step import train_step
from ..engine.timing import median_ms
from . import peers as peer_registry
from .cases import Settings
from .measure import built, execute, forward_call, implementations


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
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
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
    model = built(impl, 0)
    x = impl.encode(random_batch(schema, 1024, seed=1))
    y = (torch.rand(1024, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    optimizer = make_optimizer(model, lr=1e-3)

    def step():
        train_step(model, optimizer, x, y, probabilities=impl.probabilities)

    if mode != "memory":
        step_ms = median_ms(step, warmup=2, repeats=steps)
        model.eval()
        forward_ms = median_ms(forward_call(model, impl.encode(random_batch(schema, 4096, seed=2))), 2, steps)
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
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2])
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])
