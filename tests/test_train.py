import numpy as np
import pytest
import torch

import data
import models
from benchmarks.engine import quality
from benchmarks.engine.fit import NonFiniteLossError, fit, predict
from benchmarks.engine.metrics import evaluate


def _lr(schema, seed=0):
    torch.manual_seed(seed)
    return models.build("lr", schema)


def test_lr_learns_and_restores_best(small):
    model = _lr(small.schema)
    result = fit(model, small, lr=0.02, max_epochs=3)
    assert result.best_val_auc > 0.62
    assert result.epochs == 3 and result.steps == 3 * data.num_batches(small.train, 1024)
    assert len(result.history) == 3 and result.samples_per_second > 0
    best = max(h["val_auc"] for h in result.history)
    assert result.best_val_auc == best
    restored = evaluate(small.val.y, predict(model, small.val))["auc"]
    assert restored == pytest.approx(best, abs=1e-12)


def _untimed(history):
    return [{k: v for k, v in h.items() if k != "train_seconds"} for h in history]


def test_two_fits_with_one_seed_are_bit_identical(small):
    runs = [fit(_lr(small.schema), small, lr=0.02, max_epochs=2, seed=5) for _ in range(2)]
    assert _untimed(runs[0].history) == _untimed(runs[1].history)
    assert runs[0].test_auc == runs[1].test_auc
    assert torch.equal(runs[0].predictions["test"], runs[1].predictions["test"])
    other = fit(_lr(small.schema), small, lr=0.02, max_epochs=2, seed=6)
    assert _untimed(other.history) != _untimed(runs[0].history)


def test_fit_returns_the_restored_predictions_calibration_and_time_to_quality(small):
    result = fit(_lr(small.schema), small, lr=0.05, max_epochs=2, eval_every=10)
    val, test = result.predictions["val"], result.predictions["test"]
    assert val.shape == (len(small.val.y),) and test.shape == (len(small.test.y),)
    assert evaluate(small.val.y, val)["auc"] == pytest.approx(result.best_val_auc, abs=1e-12)
    assert evaluate(small.test.y, test)["auc"] == pytest.approx(result.test_auc, abs=1e-12)
    assert result.test_calibration["ece"] == quality.expected_calibration_error(small.test.y.numpy(), test.numpy())
    assert result.test_calibration["calibration_ratio"] == pytest.approx(
        test.double().mean().item() / small.test.y.double().mean().item(), rel=1e-6)
    seconds = [h["train_seconds"] for h in result.history]
    assert seconds == sorted(seconds) and 0 < seconds[-1] <= result.train_seconds
    assert result.time_to_quality == quality.time_to_quality(result.history)
    assert result.time_to_quality["step"] <= result.best_step


def test_early_stopping_counts_evaluations(small):
    result = fit(_lr(small.schema), small, lr=0.5, max_epochs=50, eval_every=2, patience=2)
    assert result.stopped_early
    evals_after_best = sum(h["step"] > result.best_step for h in result.history)
    assert evals_after_best == 2
    assert result.steps < 50 * data.num_batches(small.train, 1024)


def test_eval_every_steps(small):
    result = fit(_lr(small.schema), small, max_epochs=1, eval_every=5)
    steps = [h["step"] for h in result.history]
    assert steps == list(range(5, result.steps + 1, 5)) + ([result.steps] if result.steps % 5 else [])


class _Exploding(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.w * 0 + float("nan") * torch.ones(len(x))


def test_nan_loss_names_model_epoch_and_step(small):
    with pytest.raises(NonFiniteLossError, match="boom: training loss is nan at epoch 1, step 1"):
        fit(_Exploding(), small, name="boom")


def test_bad_settings():
    d = data.load("synthetic", rows=100)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        fit(_lr(d.schema), d, batch_size=0)
    with pytest.raises(ValueError, match="eval_every must be >= 1"):
        fit(_lr(d.schema), d, eval_every=0)


def test_auc_undefined_on_one_class():
    with pytest.raises(ValueError, match="AUC is undefined on split 'val': all 3 labels are \\[1.0\\]"):
        evaluate(torch.ones(3), torch.tensor([0.1, 0.2, 0.3]), "val")


def test_metrics_match_sklearn():
    from sklearn.metrics import log_loss, roc_auc_score

    y = torch.tensor([0, 1, 1, 0, 1.0])
    p = torch.tensor([0.2, 0.7, 0.4, 0.5, 0.9])
    m = evaluate(y, p)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12) and m["logloss"] == pytest.approx(log_loss(y, p))
    rng = np.random.default_rng(0)  # ties (scores rounded to 2 decimals) and probabilities of exactly 0 and 1
    y = (rng.random(5000) < 0.3).astype(np.float32)
    p = np.round(np.clip(rng.normal(0.3 + 0.2 * y, 0.3), 0, 1), 2).astype(np.float32)
    m = evaluate(torch.from_numpy(y), torch.from_numpy(p))
    assert m["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["logloss"] == pytest.approx(log_loss(y, np.clip(p.astype(float), 1e-7, 1 - 1e-7)), rel=1e-12)


def test_train_step_is_bce_then_one_adam_step(small):
    """Against a hand computation: the returned loss is BCE of the pre-step logits, and Adam's first step
    moves every weight by lr * g / (|g| + eps) (bias-corrected moments of one gradient)."""
    from benchmarks.engine.runtime import make_optimizer
    from benchmarks.engine.step import train_step

    model = _lr(small.schema)
    x, y = small.train.x[:256], small.train.y[:256]
    before = [p.detach().clone() for p in model.parameters()]
    logits = model(x)
    expected_loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    grads = torch.autograd.grad(expected_loss, list(model.parameters()))
    lr, eps = 0.01, 1e-8
    loss = train_step(model, make_optimizer(model, lr), x, y)
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-6) and not loss.requires_grad
    for p, p0, g in zip(model.parameters(), before, grads, strict=True):
        torch.testing.assert_close(p.detach(), p0 - lr * g / (g.abs() + eps), rtol=1e-5, atol=1e-7)
