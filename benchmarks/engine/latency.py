"""One latency probe for everything: forward pass in inference mode at a given batch size."""

from __future__ import annotations

from collections.abc import Callable

import torch

from data import Features, Schema
from data.schema import NUMBER

from .distributed import device_name, synchronize
from .runtime import autocast, retain_freed_memory
from .timing import timings_ms


def random_batch(schema: Schema, batch_size: int, seed: int = 0) -> torch.Tensor | Features:
    """``[batch_size, F]`` valid global indices, uniform within each field.

    A schema with numeric fields gets ``Features``: a numeric field's number is standard normal, every
    other value (categorical fields, a missing number) is 1.
    """
    g = torch.Generator().manual_seed(seed)
    sizes = torch.tensor([f.vocab_size for f in schema.fields])
    local = (torch.rand(batch_size, schema.num_fields, generator=g) * sizes).long()
    index = local + torch.tensor(schema.offsets)
    if not schema.has_values:
        return index
    number = torch.tensor([f.kind == "numeric" for f in schema.fields]) & (local == NUMBER)
    return Features(index, torch.where(number, torch.randn(index.shape, generator=g), torch.ones(())))


def inference_call(
    model: torch.nn.Module, schema: Schema, batch_size: int, precision: str = "fp32"
) -> Callable[[], torch.Tensor]:
    """A no-argument call of ``model`` on a fixed random batch, in eval and inference mode.

    The batch (:func:`random_batch`) is put on the device of ``model``'s parameters; on CUDA the call waits for
    the device before returning, so a clock read after it measures the forward pass, not its queueing.

    Puts ``model`` in eval mode; the harness probe and the pytest-benchmark checks time this.
    ``precision="bf16"`` runs it under bfloat16 autocast (see ``benchmarks.engine.runtime.autocast``).
    """
    model.eval()
    device = next(model.parameters()).device
    x = random_batch(schema, batch_size).to(device)
    autocast(precision)  # validates it now rather than at the first call

    def call():
        with torch.inference_mode(), autocast(precision):
            out = model(x)
        synchronize(device)
        return out

    return call


def measure_latency(
    model: torch.nn.Module,
    schema: Schema,
    batch_size: int,
    *,
    warmup: int = 3,
    repeats: int = 15,
    precision: str = "fp32",
    retain_memory: bool = True,
) -> dict:
    """Median and p90 wall time (ms) of ``model(x)`` in eval mode over ``repeats`` calls.

    ``retain_memory``: see ``benchmarks.engine.runtime.retain_freed_memory`` (without it a large batch
    spends much of its time in page faults).
    """
    if retain_memory:
        retain_freed_memory()
    was_training = model.training
    call = inference_call(model, schema, batch_size, precision)
    times = torch.tensor(timings_ms(call, warmup, repeats))
    model.train(was_training)
    return {
        "batch_size": batch_size,
        "median_ms": float(times.median()),
        "p90_ms": float(torch.quantile(times, 0.9)),
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "precision": precision,
        "device": device_name(next(model.parameters()).device),
    }
