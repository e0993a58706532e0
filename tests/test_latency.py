"""Latency checks (pytest-benchmark): forward at batch 1 and 4096, one training step, per model.

The default test run passes --benchmark-disable (pyproject.toml), which runs every timed call
once to prove it works. Time them for real with
    python -m pytest tests/test_latency.py --benchmark-enable --benchmark-autosave
and compare with a saved run with --benchmark-compare.
"""

import pytest
import torch

import data
import models
from benchmarks.engine.latency import inference_call, random_batch
from benchmarks.engine.step import train_step

SCHEMA = data.load("synthetic", rows=100).schema
TRAIN_BATCH = 1024


def _model(name):
    torch.manual_seed(0)
    return models.build(name, SCHEMA)


@pytest.mark.parametrize("batch_size", [1, 4096])
@pytest.mark.parametrize("name", models.available())
def test_forward_latency(benchmark, name, batch_size):
    benchmark.group = f"forward, batch {batch_size}"
    out = benchmark(inference_call(_model(name), SCHEMA, batch_size))
    assert out.shape == (batch_size,) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", models.available())
def test_training_step_latency(benchmark, name):
    benchmark.group = f"training step, batch {TRAIN_BATCH}"
    model = _model(name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = random_batch(SCHEMA, TRAIN_BATCH)
    y = (torch.rand(TRAIN_BATCH, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    before = [p.detach().clone() for p in model.parameters()]
    loss = benchmark(train_step, model, optimizer, x, y)
    assert torch.isfinite(loss) and loss.requires_grad is False
    assert all(not torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))


@pytest.mark.parametrize("name", ["deepfm", "dcn_v2"])
def test_forward_latency_bf16(benchmark, name):
    benchmark.group = "forward, batch 4096, bf16 autocast"
    out = benchmark(inference_call(_model(name), SCHEMA, 4096, precision="bf16"))
    assert out.shape == (4096,) and torch.isfinite(out).all()
