"""The one training loop every model goes through: ``fit`` with early stopping, and ``predict``.

Its speed levers (fused Adam, malloc keeping freed memory, bf16 autocast) live in
:mod:`benchmarks.engine.runtime`; the step itself in :mod:`benchmarks.engine.step`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from data import Dataset, Split, batches, num_batches

from .distributed import Placement
from .metrics import evaluate
from .quality import calibration_ratio, expected_calibration_error, time_to_quality
from .runtime import autocast, make_optimizer, retain_freed_memory
from .step import train_step


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class FitResult:
    """What one ``fit`` produced; metrics of the restored (best-validation) weights."""

    best_val_auc: float
    best_val_logloss: float
    test_auc: float
    test_logloss: float
    epochs: int
    steps: int
    best_step: int
    best_epoch: float
    stopped_early: bool
    train_seconds: float
    samples_per_second: float
    history: list[dict] = field(default_factory=list)
    predictions: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # split -> probabilities [N]
    test_calibration: dict[str, float] = field(default_factory=dict)  # ece, calibration_ratio
    time_to_quality: dict[str, float] = field(default_factory=dict)  # seconds, epochs, step


@torch.inference_mode()
def predict(model: torch.nn.Module, split: Split, batch_size: int = 4096, precision: str = "fp32",
            placement: Placement | None = None) -> torch.Tensor:
    """Click probabilities ``[N]`` of ``split`` in eval mode, in row order, on CPU.

    ``placement``: the device ``model`` is on; under several ranks each scores its rows and the
    predictions of the whole split are gathered.
    """
    placement = placement or Placement()
    was_training = model.training
    model.eval()
    with autocast(precision):
        logits = [model(placement.to_device(x, y)[0]).float() for x, y in batches(placement.shard(split), batch_size)]
    model.train(was_training)
    return placement.gather(torch.sigmoid(torch.cat(logits)), len(split))


def fit(
    model: torch.nn.Module,
    dataset: Dataset,
    *,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 1024,
    max_epochs: int = 10,
    eval_every: int | None = None,
    patience: int = 10,
    seed: int = 0,
    eval_batch_size: int = 4096,
    progress: bool = False,
    name: str | None = None,
    fused_adam: bool = True,
    retain_memory: bool = True,
    precision: str = "fp32",
    placement: Placement | None = None,
) -> FitResult:
    """Train ``model`` (index batch ``[B, F]``, or ``Features`` when the data set has values -> logits ``[B]``)
    with Adam and BCE.

    Validation AUC is measured every ``eval_every`` steps (``None``: once per epoch);
    training stops after ``patience`` evaluations without a better validation AUC, or
    after ``max_epochs``. The best weights are restored; the validation and test
    probabilities they give are returned in ``predictions``, with the test split's AUC, logloss
    and calibration, and the time until validation AUC came within 0.001 of its best
    (each history entry carries the training seconds so far, evaluation excluded). The seed
    fixes shuffling and dropout: the same seed (and the same model
    initialisation, thread count and levers) gives bit-identical metrics on CPU.

    Speed levers: ``fused_adam`` (one fused Adam kernel), ``retain_memory`` (see
    :func:`retain_freed_memory`), ``precision`` (``"bf16"``: bfloat16 autocast for training and
    evaluation). ``placement``: the device and, under ``torchrun``, the rank (see
    :mod:`benchmarks.engine.distributed`); the default is one CPU process. The loop reads the losses
    back once per evaluation, not once per step;
    a non-finite loss is then reported with the step where it first appeared.

    A family that defines ``fit_by_solver(train, val) -> dict`` (e.g. ``lr_sklearn``: scikit-learn's
    lbfgs) is fitted by it instead of Adam, on CPU, and recorded as one epoch of one step: its history
    entry carries the solver's report under ``"solver"``; samples/s are training rows over solver seconds.
    """
    for key, value in {"batch_size": batch_size, "max_epochs": max_epochs, "patience": patience}.items():
        if value < 1:
            raise ValueError(f"fit: {key} must be >= 1, got {value}")
    if eval_every is not None and eval_every < 1:
        raise ValueError(f"fit: eval_every must be >= 1 step or None (once per epoch), got {eval_every}")
    autocast(precision)  # validates it before any work
    name = name or type(model).__name__
    placement = placement or Placement()
    if hasattr(model, "fit_by_solver"):
        return _fit_by_solver(model, dataset, eval_batch_size, precision, placement)
    net = placement.wrap(model)
    model = getattr(net, "module", net)  # the parameters DDP trains, for evaluation and state
    if retain_memory:
        retain_freed_memory()
    torch.manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(net, lr, weight_decay, fused_adam)
    steps_per_epoch = num_batches(dataset.train, batch_size)
    eval_every = eval_every or steps_per_epoch

    best = {"auc": -math.inf, "logloss": math.nan, "step": 0, "state": None}
    history: list[dict] = []
    step, stale, stopped_early, step_seconds, samples = 0, 0, False, 0.0, 0
    losses: list[torch.Tensor] = []  # since the last evaluation
    start = time.perf_counter()
    bar = tqdm(total=max_epochs * steps_per_epoch, desc=name, disable=not progress, leave=False, unit="step")
    net.train()
    epoch = 0
    while epoch < max_epochs and not stopped_early:
        epoch += 1
        tick = time.perf_counter()
        for x, y, rows in placement.train_batches(dataset.train, batch_size, shuffle):
            losses.append(train_step(net, optimizer, x, y, precision, loss_scale=placement.loss_scale(rows)))
            step += 1
            samples += rows
            if step % eval_every and step % steps_per_epoch:
                continue
            step_seconds += time.perf_counter() - tick
            train_loss = _mean_finite_loss(placement.mean(torch.stack(losses)), step, steps_per_epoch, name)
            losses = []
            val = evaluate(dataset.val.y, predict(model, dataset.val, eval_batch_size, precision, placement), "val")
            history.append({"step": step, "epoch": round(step / steps_per_epoch, 3),
                            "train_seconds": step_seconds, "train_loss": train_loss, "val_auc": val["auc"],
                            "val_logloss": val["logloss"]})
            if placement.decide(val["auc"] > best["auc"]):
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best.update(auc=val["auc"], logloss=val["logloss"], step=step, state=state)
                stale = 0
            else:
                stale += 1
            bar.update(step - bar.n)
            bar.set_postfix(epoch=epoch, val_auc=f"{val['auc']:.4f}", best=f"{best['auc']:.4f}")
            if stale >= patience:
                stopped_early = True
                break
            tick = time.perf_counter()
    bar.close()
    model.load_state_dict(best["state"])
    return _result(model, dataset, eval_batch_size, precision, placement, history,
                   epochs=epoch, steps=step, best_step=best["step"],
                   best_epoch=round(best["step"] / steps_per_epoch, 3), stopped_early=stopped_early,
                   train_seconds=time.perf_counter() - start,
                   samples_per_second=samples / step_seconds if step_seconds else 0.0)


def _fit_by_solver(model: torch.nn.Module, dataset: Dataset, eval_batch_size: int, precision: str,
                   placement: Placement) -> FitResult:
    """``model.fit_by_solver(train, val)`` on CPU (every rank solves the same problem), then evaluated on the
    device like a trained model; one history entry."""
    start = time.perf_counter()
    solved = model.cpu().fit_by_solver(dataset.train, dataset.val)
    seconds = time.perf_counter() - start
    model.to(placement.device)
    train = evaluate(dataset.train.y, predict(model, dataset.train, eval_batch_size, precision, placement), "train")
    val_prob = predict(model, dataset.val, eval_batch_size, precision, placement)
    val = evaluate(dataset.val.y, val_prob, "val")
    history = [{"step": 1, "epoch": 1.0, "train_seconds": seconds, "train_loss": train["logloss"],
                "val_auc": val["auc"], "val_logloss": val["logloss"], "solver": solved}]
    return _result(model, dataset, eval_batch_size, precision, placement, history, val_prob, epochs=1, steps=1,
                   best_step=1, best_epoch=1.0, stopped_early=False, train_seconds=seconds,
                   samples_per_second=len(dataset.train) / seconds)


def _result(model: torch.nn.Module, dataset: Dataset, eval_batch_size: int, precision: str, placement: Placement,
            history: list[dict], val_prob: torch.Tensor | None = None, **counts) -> FitResult:
    """The FitResult of ``model``'s final weights: validation and test predictions (``val_prob``: the validation
    ones, when already made), test metrics and calibration, the best validation entry of ``history`` and the
    time to quality; ``counts``: steps, epochs, seconds."""
    predictions = {"val": val_prob if val_prob is not None else
                   predict(model, dataset.val, eval_batch_size, precision, placement),
                   "test": predict(model, dataset.test, eval_batch_size, precision, placement)}
    test = evaluate(dataset.test.y, predictions["test"], "test")
    test_y, test_prob = np.asarray(dataset.test.y), predictions["test"].numpy()
    best = next(h for h in history if h["step"] == counts["best_step"])
    return FitResult(
        best_val_auc=best["val_auc"], best_val_logloss=best["val_logloss"],
        test_auc=test["auc"], test_logloss=test["logloss"],
        history=history,
        predictions=predictions,
        test_calibration={"ece": expected_calibration_error(test_y, test_prob),
                          "calibration_ratio": calibration_ratio(test_y, test_prob)},
        time_to_quality=time_to_quality(history),
        **counts,
    )


def _mean_finite_loss(window: torch.Tensor, step: int, steps_per_epoch: int, name: str) -> float:
    """Mean of the losses ``window`` of steps ``step - len(window) + 1 .. step``; raises at the first non-finite one."""
    finite = torch.isfinite(window)
    if not finite.all():
        first = int((~finite).nonzero()[0, 0])
        bad_step = step - len(window) + 1 + first
        raise NonFiniteLossError(
            f"{name}: training loss is {window[first].item()} at epoch {(bad_step - 1) // steps_per_epoch + 1}, "
            f"step {bad_step}; lower the learning rate or check the inputs"
        )
    return window.mean().item()
