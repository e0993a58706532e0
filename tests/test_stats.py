import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from benchmarks.reports import stats


def _brute_delong(y, scores):
    """AUCs and DeLong covariance by explicit loops over every (positive, negative) pair."""
    scores = np.atleast_2d(scores)
    pos = [i for i in range(len(y)) if y[i] == 1]
    neg = [j for j in range(len(y)) if y[j] == 0]
    m, n, k = len(pos), len(neg), len(scores)
    v10, v01 = np.zeros((k, m)), np.zeros((k, n))
    for s in range(k):
        for a, i in enumerate(pos):
            for b, j in enumerate(neg):
                x, z = scores[s, i], scores[s, j]
                psi = 1.0 if x > z else 0.5 if x == z else 0.0
                v10[s, a] += psi / n
                v01[s, b] += psi / m
    auc = v10.mean(axis=1)
    cov = np.zeros((k, k))
    for a in range(k):
        for b in range(k):
            s10 = sum((v10[a, i] - auc[a]) * (v10[b, i] - auc[b]) for i in range(m)) / (m - 1)
            s01 = sum((v01[a, j] - auc[a]) * (v01[b, j] - auc[b]) for j in range(n)) / (n - 1)
            cov[a, b] = s10 / m + s01 / n
    return auc, cov


def _tied_data(seed=0, rows=40, models=3):
    """Small labels and correlated scores rounded to one decimal, so ties within and across classes abound."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.4).astype(int)
    base = rng.normal(size=rows) + y
    scores = np.round(np.stack([base + rng.normal(scale=0.7, size=rows) for _ in range(models)]), 1)
    return y, scores


def _binormal(rng, rows, shift, noise=0.5, latent=None):
    """Half positives; score = latent + y * shift + noise * eps (a shared ``latent`` makes models correlated)."""
    y = np.arange(rows) % 2
    latent = rng.normal(size=rows) if latent is None else latent
    return y, latent + y * shift + noise * rng.normal(size=rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_matches_the_pairwise_loops_with_ties(seed):
    y, scores = _tied_data(seed)
    assert len(np.unique(scores)) < scores.size / 2  # the data really has ties
    auc, cov = stats.delong(y, scores)
    brute_auc, brute_cov = _brute_delong(y, scores)
    np.testing.assert_allclose(auc, brute_auc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, brute_cov, rtol=1e-10, atol=1e-15)
    assert auc[0] == pytest.approx(roc_auc_score(y, scores[0]), abs=1e-12)


def test_delong_variance_agrees_with_a_stratified_bootstrap():
    rng = np.random.default_rng(0)
    y, score = _binormal(rng, 600, shift=1.0)
    auc, var = stats.delong(y, score)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    boot = []
    for _ in range(1000):
        rows = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        boot.append(roc_auc_score(y[rows], score[rows]))
    assert var[0, 0] == pytest.approx(np.var(boot, ddof=1), rel=0.15)  # the bootstrap's own error is ~ 4.5 %


def test_paired_test_matches_brute_force_and_its_alternatives():
    y, scores = _tied_data(3, rows=60, models=2)
    brute_auc, brute_cov = _brute_delong(y, scores)
    var = brute_cov[0, 0] + brute_cov[1, 1] - 2 * brute_cov[0, 1]
    z = (brute_auc[0] - brute_auc[1]) / math.sqrt(var)
    result = stats.delong_paired(y, scores[0], scores[1])
    assert result["z"] == pytest.approx(z, rel=1e-10)
    assert result["p"] == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-10)
    assert stats.delong_paired(y, scores[0], scores[1], "greater")["p"] == pytest.approx(sps.norm.sf(z), rel=1e-10)
    assert stats.delong_paired(y, scores[0], scores[1], "less")["p"] == pytest.approx(sps.norm.cdf(z), rel=1e-10)
    same = stats.delong_paired(y, scores[0], scores[0])
    assert same["z"] == 0 and same["p"] == 1.0


def test_paired_test_sees_a_difference_the_unpaired_intervals_hide():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=4000)
    y, a = _binormal(rng, 4000, shift=1.0, noise=0.2, latent=latent)
    b = a + 0.3 * rng.normal(size=4000)  # the same model, a little noisier: a small but sure AUC loss
    result = stats.delong_paired(y, a, b, "greater")
    auc, cov = stats.delong(y, np.stack([a, b]))
    assert result["diff"] < 1.96 * math.sqrt(cov[0, 0] + cov[1, 1])  # separate intervals overlap
    assert result["p"] < 1e-3


def test_compare_mean_aucs_is_the_paired_test_for_one_seed_and_uses_the_joint_covariance():
    y, scores = _tied_data(4, rows=60, models=4)
    one = stats.compare_mean_aucs(y, scores[0], scores[1])
    paired = stats.delong_paired(y, scores[0], scores[1], "greater")
    assert one["t"] == pytest.approx(paired["z"], rel=1e-10) and one["p"] == pytest.approx(paired["p"], rel=1e-10)
    two = stats.compare_mean_aucs(y, scores[:2], scores[2:])
    auc, cov = _brute_delong(y, scores)
    c = np.array([0.5, 0.5, -0.5, -0.5])
    expected = c @ cov @ c + np.var(auc[:2], ddof=1) / 2 + np.var(auc[2:], ddof=1) / 2
    assert two["diff"] == pytest.approx(c @ auc, abs=1e-12)
    assert two["se"] ** 2 == pytest.approx(expected, rel=1e-10)
    assert math.isfinite(two["df"]) and two["p"] == pytest.approx(sps.t.sf(two["t"], two["df"]), rel=1e-10)
    both = stats.compare_mean_aucs(y, scores[:2], scores[2:], "two-sided")["p"]
    assert both == pytest.approx(2 * min(two["p"], 1 - two["p"]), rel=1e-10)


def _simulated_seeds(rng, rows, seeds, shift, tau, noise=0.5):
    """One test set, ``seeds`` models whose signal strength varies by seed: shift_s ~ N(shift, tau)."""
    y = np.arange(rows) % 2
    latent = rng.normal(size=rows)
    shifts = rng.normal(shift, tau, size=seeds)
    return y, np.stack([latent + y * s + noise * rng.normal(size=rows) for s in shifts])


def _expected_auc(shift, tau, noise=0.5):
    """The population AUC averaged over seeds: E_s Phi(shift_s / sqrt(2 (1 + noise^2)))."""
    draws = np.random.default_rng(123).normal(shift, tau, size=1_000_000)
    return float(sps.norm.cdf(draws / math.sqrt(2 * (1 + noise**2))).mean())


@pytest.mark.parametrize("tau", [0.02, 0.4])  # test-set noise dominates / seed noise dominates
def test_interval_covers_the_true_mean_auc(tau):
    rng = np.random.default_rng(7)
    truth = _expected_auc(1.0, tau)
    hits, seed_only_hits, reps = 0, 0, 400
    for _ in range(reps):
        y, scores = _simulated_seeds(rng, 600, 3, 1.0, tau)
        ci = stats.mean_auc_interval(y, scores)
        hits += ci["low"] <= truth <= ci["high"]
        aucs = [roc_auc_score(y, s) for s in scores]
        half = sps.t.ppf(0.975, 2) * np.std(aucs, ddof=1) / math.sqrt(3)
        seed_only_hits += abs(np.mean(aucs) - truth) <= half
    assert 0.90 <= hits / reps <= 0.995
    if tau == 0.02:
        assert seed_only_hits / reps < 0.7  # the seed-only interval misses the test-set noise


def test_interval_with_one_seed_is_the_delong_interval():
    y, scores = _tied_data(5, rows=80, models=1)
    ci = stats.mean_auc_interval(y, scores[0])
    auc, cov = _brute_delong(y, scores)
    half = 1.959963984540054 * math.sqrt(cov[0, 0])
    assert (ci["low"], ci["high"]) == pytest.approx((auc[0] - half, auc[0] + half), abs=1e-12)
    assert ci["seeds"] == 1 and ci["seed_var"] == 0


def test_comparison_keeps_its_size_under_the_null_and_finds_a_real_gap():
    rng = np.random.default_rng(11)
    reps, false, found = 300, 0, 0
    for _ in range(reps):
        y = np.arange(600) % 2
        latent = rng.normal(size=600)
        family = [latent + y * rng.normal(1.0, 0.05) + 0.5 * rng.normal(size=600) for _ in range(6)]
        worse = [latent + y * rng.normal(0.8, 0.05) + 0.5 * rng.normal(size=600) for _ in range(3)]
        false += stats.compare_mean_aucs(y, family[:3], family[3:])["p"] < 0.05
        found += stats.compare_mean_aucs(y, family[:3], worse)["p"] < 0.05
    assert false / reps <= 0.08
    assert found / reps >= 0.8


def test_holm_on_a_hand_worked_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to the running max 0.06
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])
    np.testing.assert_allclose(stats.holm([0.2]), [0.2])
    with pytest.raises(ValueError, match=r"p-values in \[0, 1\], got \[0.1, 1.5\]"):
        stats.holm([0.1, 1.5])


def test_close_to_best_marks_the_twin_and_not_the_weak_row():
    rng = np.random.default_rng(2)
    y = np.arange(3000) % 2
    latent = rng.normal(size=3000)

    def family(shift):
        return np.stack([latent + y * shift + 0.5 * rng.normal(size=3000) for _ in range(3)])

    marks = stats.close_to_best(y, {"strong": family(1.0), "twin": family(0.995), "weak": family(0.7)})
    best = next(label for label, m in marks.items() if m["best"])
    assert best in ("strong", "twin")
    assert marks["strong"]["close"] and marks["twin"]["close"] and not marks["weak"]["close"]
    close = "twin" if best == "strong" else "strong"
    assert marks["weak"]["p"] < marks[close]["p"]  # so Holm multiplies the weak row's p by the 2 rows tested
    assert marks["weak"]["p_holm"] == pytest.approx(2 * marks["weak"]["p"], rel=1e-9)
    assert marks[close]["p_holm"] == pytest.approx(max(marks[close]["p"], 2 * marks["weak"]["p"]), rel=1e-9)


def test_inputs_are_checked_at_the_door():
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"scores of shape \(1, 3\) do not match labels of shape \(4,\)"):
        stats.delong(y, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"labels must be 0 or 1, got values \[0, 1, 2\]"):
        stats.delong([0, 1, 2, 1], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="at least 2 positive and 2 negative rows, got 1 and 3"):
        stats.delong([0, 1, 0, 0], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="NaN or inf"):
        stats.delong(y, [0.1, np.nan, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"alternative must be one of .* got 'bigger'"):
        stats.delong_paired(y, [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], "bigger")
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 95"):
        stats.mean_auc_interval(y, [0.1, 0.2, 0.3, 0.4], level=95)
    with pytest.raises(ValueError, match="no rows to compare"):
        stats.close_to_best(y, {})
