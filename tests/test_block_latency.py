"""Latency checks (pytest-benchmark) of the interaction blocks on their own, so that a slower block shows by itself.

Each block is timed in inference at batch 4096 and for a training step (forward and backward) at
batch 1024, at the common architecture of ``benchmarks.speed`` (10 fields, d = 16, M = 160).
The default run passes --benchmark-disable and calls each once; time them for real with
    python -m pytest tests/test_block_latency.py --benchmark-enable
"""

import pytest
import torch

from models.layers import (
    MLP,
    CrossLayer,
    FieldAwareInteraction,
    FMInteraction,
    InnerProduct,
    MixtureCrossLayer,
    OuterProduct,
)

NUM_FEATURES, F, D = 72, 10, 16
M = F * D


def _indices(batch):
    return torch.randint(0, NUM_FEATURES, (batch, F), generator=torch.Generator().manual_seed(0))


def _embeddings(batch):
    return torch.randn(batch, F, D, generator=torch.Generator().manual_seed(0))


def _flat(batch):
    return torch.randn(batch, M, generator=torch.Generator().manual_seed(0))


# name -> (block factory, inputs at a batch size); inputs are one tensor or a tuple of them.
BLOCKS = {
    "cross layer": (lambda: CrossLayer(M), lambda b: (_flat(b), _flat(b))),
    "mixture cross layer, study": (lambda: MixtureCrossLayer(M), lambda b: (_flat(b), _flat(b))),
    "mixture cross layer, paper": (lambda: MixtureCrossLayer(M, expert_form="paper"), lambda b: (_flat(b), _flat(b))),
    "outer product": (lambda: OuterProduct(F, D), _embeddings),
    "inner product": (lambda: InnerProduct(F), _embeddings),
    "field-aware interaction": (lambda: FieldAwareInteraction(NUM_FEATURES, F, D), _indices),
    "fm interaction": (FMInteraction, _embeddings),
    "mlp (128, 64, 32)": (lambda: MLP(M, (128, 64, 32), dropout=0.1), _flat),
}


def _block(name, batch_size):
    """The block ``name`` (seeded) and its inputs for ``batch_size`` rows, always as a tuple."""
    torch.manual_seed(0)
    make, inputs = BLOCKS[name]
    args = inputs(batch_size)
    return make(), args if isinstance(args, tuple) else (args,)


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_forward_latency(benchmark, name):
    benchmark.group = "block forward, batch 4096"
    block, args = _block(name, 4096)
    block.eval()

    def call():
        with torch.inference_mode():
            return block(*args)

    out = benchmark(call)
    assert len(out) == 4096 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_training_latency(benchmark, name):
    benchmark.group = "block forward + backward, batch 1024"
    block, args = _block(name, 1024)
    args = tuple(a.requires_grad_() if a.is_floating_point() else a for a in args)
    block.train()

    def step():
        block.zero_grad(set_to_none=True)
        block(*args).sum().backward()

    benchmark(step)
    grads = [p.grad for p in block.parameters()] + [a.grad for a in args if a.is_floating_point()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
