import numpy as np
import pytest

from benchmarks.engine import quality


def _calibrated(rows=500_000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, size=rows)
    return (rng.random(rows) < p).astype(float), p


def test_a_calibrated_predictor_has_ece_near_zero_and_ratio_one():
    y, p = _calibrated()
    assert quality.expected_calibration_error(y, p) < 0.004  # sampling floor ~ 0.8 sqrt(0.25 * 10 / 5e5) = 0.002
    assert quality.calibration_ratio(y, p) == pytest.approx(1.0, abs=0.005)


def test_a_scaled_predictor_has_the_known_ece_and_ratio():
    y, p = _calibrated()
    # bins of 0.5 p are the bins of p, so each bin is off by 0.5 mean(p_b): ECE = 0.5 E[p] = 0.25
    assert quality.expected_calibration_error(y, 0.5 * p) == pytest.approx(0.25, abs=0.004)
    assert quality.calibration_ratio(y, 0.5 * p) == pytest.approx(0.5, abs=0.003)


def test_reliability_bins_have_equal_mass_and_are_checked():
    y, p = _calibrated(rows=1003)
    curve = quality.reliability(y, p, bins=10)
    assert curve["count"].sum() == 1003 and curve["count"].max() - curve["count"].min() <= 1
    assert np.all(np.diff(curve["predicted"]) > 0)
    with pytest.raises(ValueError, match=r"bins must be between 1 and the number of rows \(1003\), got 0"):
        quality.reliability(y, p, bins=0)
    with pytest.raises(ValueError, match=r"probabilities must be finite and in \[0, 1\]"):
        quality.expected_calibration_error(y, p + 1)
    with pytest.raises(ValueError, match="no click"):
        quality.calibration_ratio(np.zeros(3), np.full(3, 0.2))


def _history(aucs, seconds_per_eval=2.0, steps_per_eval=25, steps_per_epoch=100):
    return [{"step": steps_per_eval * (i + 1), "epoch": steps_per_eval * (i + 1) / steps_per_epoch,
             "train_seconds": seconds_per_eval * (i + 1), "val_auc": a} for i, a in enumerate(aucs)]


def test_time_to_quality_on_hand_made_histories():
    # best 0.7410; the first evaluation at or above 0.7400 is the third (0.7405), not the best (fifth)
    found = quality.time_to_quality(_history([0.70, 0.7395, 0.7405, 0.7380, 0.7410, 0.7401]))
    assert found == {"seconds": 6.0, "epochs": 0.75, "step": 75}
    # a run that is best at its first evaluation reaches quality there
    assert quality.time_to_quality(_history([0.75, 0.70, 0.71]))["step"] == 25
    # a wider tolerance accepts an earlier evaluation
    assert quality.time_to_quality(_history([0.70, 0.7395, 0.7405, 0.7410]), tolerance=0.002)["step"] == 50


def test_time_to_quality_rejects_bad_histories():
    with pytest.raises(ValueError, match="history is empty"):
        quality.time_to_quality([])
    with pytest.raises(ValueError, match=r"entry 1 lacks \['train_seconds'\]"):
        quality.time_to_quality([_history([0.7])[0], {"step": 50, "epoch": 0.5, "val_auc": 0.71}])
    with pytest.raises(ValueError, match="tolerance must be >= 0, got -0.1"):
        quality.time_to_quality(_history([0.7]), tolerance=-0.1)
