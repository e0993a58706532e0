"""The one training step: forward, binary cross-entropy, backward, optimizer step.

``fit``, the speed report's bare loop, its memory probe and its lever timings all call
:func:`train_step`, so every figure measures the same step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .runtime import autocast


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    precision: str = "fp32",
    probabilities: bool = False,
    loss_scale: float | None = None,
) -> torch.Tensor:
    """One optimisation step on the batch ``(x [B, F], y [B])``; returns the detached loss (a 0-d tensor).

    loss = BCE(sigmoid(model(x)), y), computed from logits; ``probabilities``: the model returns click
    probabilities (a peer implementation), so plain BCE is used. Outputs ``[B]`` or ``[B, 1]`` are both
    accepted. ``loss_scale``: the loss is ``sum of BCE over the rows * loss_scale`` instead of the mean
    (a data-parallel rank's share of its global batch, see ``benchmarks.engine.distributed``). The loss is
    not read back (no ``.item()``), so a caller can batch its read-backs.
    """
    with autocast(precision):
        out = model(x)
    out = out.float().reshape(-1)  # [B]
    reduction = "mean" if loss_scale is None else "sum"
    loss = (F.binary_cross_entropy(out, y, reduction=reduction) if probabilities
            else F.binary_cross_entropy_with_logits(out, y, reduction=reduction))
    if loss_scale is not None:
        loss = loss * loss_scale
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()
