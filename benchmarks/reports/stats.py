"""Statistics behind an honest leaderboard: AUC uncertainty that includes the test set and paired
comparisons with a multiple-testing correction. Pure functions of labels and predictions (numpy, scipy).

Neither scikit-learn (``roc_auc_score`` gives the AUC only) nor scipy (``scipy.stats`` has no ROC
tools) computes DeLong's variance or test, and statsmodels (not a dependency) has Holm's method
but no DeLong either; both are short here, each checked against a brute-force version in
``tests/test_stats.py``.

AUC and its variance (DeLong, DeLong & Clarke-Pearson 1988; midrank form of Sun & Xu 2014).
With positives ``X_1..X_m`` and negatives ``Y_1..Y_n`` of one score vector and
``psi(x, y) = 1 if x > y, 1/2 if x == y, 0 otherwise``:

    AUC    = 1/(m n) sum_i sum_j psi(X_i, Y_j)
    V10_i  = 1/n sum_j psi(X_i, Y_j)          (one structural component per positive)
    V01_j  = 1/m sum_i psi(X_i, Y_j)          (one per negative)
    Cov(AUC_a, AUC_b) = S10_ab / m + S01_ab / n

where ``S10`` and ``S01`` are the sample covariances (ddof 1) of the components of score vectors
``a`` and ``b`` on the same rows. Midranks give the components without the m x n loop:
``V10_i = (rank of X_i among all rows - rank of X_i among the positives) / n``, and likewise
for ``V01``, so the cost is one sort per vector, O(N log N).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

ALTERNATIVES = ("two-sided", "greater", "less")


def _labels_and_scores(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """``y`` as a boolean positive mask ``[N]`` and ``scores`` as ``[K, N]``, checked."""
    y = np.asarray(y)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    if y.ndim != 1 or scores.ndim != 2 or scores.shape[1] != len(y):
        raise ValueError(f"scores of shape {scores.shape} do not match labels of shape {y.shape}; "
                         "expected labels [N] and scores [N] or [K, N]")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got values {np.unique(y)[:6].tolist()}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf")
    positives = y == 1
    m, n = int(positives.sum()), int((~positives).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's variance needs at least 2 positive and 2 negative rows, got {m} and {n}")
    return positives, scores


def delong(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs ``[K]`` and their DeLong covariance ``[K, K]`` for ``K`` score vectors on the same rows.

    ``scores``: ``[N]`` or ``[K, N]``; ``y``: 0/1 labels ``[N]``. Ties count one half.
    """
    positives, scores = _labels_and_scores(y, scores)
    pos, neg = scores[:, positives], scores[:, ~positives]  # [K, m], [K, n]
    m, n = pos.shape[1], neg.shape[1]
    ranks = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)  # [K, m + n], midranks
    v10 = (ranks[:, :m] - stats.rankdata(pos, axis=1)) / n  # [K, m]: share of negatives below each positive
    v01 = 1.0 - (ranks[:, m:] - stats.rankdata(neg, axis=1)) / m  # [K, n]: share of positives above each negative
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n  # [K, K]
    return v10.mean(axis=1), cov


def _z(diff: float, var: float) -> float:
    """``diff / sqrt(var)``; a zero variance gives 0 for no difference and +-inf otherwise."""
    if var > 0:
        return diff / math.sqrt(var)
    return 0.0 if diff == 0 else math.copysign(math.inf, diff)


def _p_value(statistic: float, alternative: str, df: float = math.inf) -> float:
    """p of a t (``df`` degrees of freedom; normal when infinite) statistic under ``alternative``."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {list(ALTERNATIVES)}, got {alternative!r}")
    dist = stats.norm if math.isinf(df) else stats.t(df)
    if alternative == "greater":
        return float(dist.sf(statistic))
    if alternative == "less":
        return float(dist.cdf(statistic))
    return float(min(1.0, 2 * dist.sf(abs(statistic))))


def delong_paired(y, a, b, alternative: str = "two-sided") -> dict[str, float]:
    """DeLong's test of AUC(a) against AUC(b), two score vectors on the same rows ``y``.

    ``z = (AUC_a - AUC_b) / sqrt(Var_a + Var_b - 2 Cov_ab)``, standard normal under equal AUCs;
    ``alternative="greater"`` tests AUC_a > AUC_b, ``"less"`` AUC_a < AUC_b.
    """
    auc, cov = delong(y, np.stack([np.asarray(a, dtype=float), np.asarray(b, dtype=float)]))
    diff = float(auc[0] - auc[1])
    var = max(float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]), 0.0)
    z = _z(diff, var)
    return {"auc_a": float(auc[0]), "auc_b": float(auc[1]), "diff": diff, "var": var, "z": z,
            "p": _p_value(z, alternative)}


def _seed_variance(aucs: np.ndarray) -> tuple[float, float]:
    """Variance of the mean of ``aucs`` over seeds and its degrees of freedom; (0, inf) for one seed."""
    if len(aucs) < 2:
        return 0.0, math.inf
    return float(aucs.var(ddof=1) / len(aucs)), float(len(aucs) - 1)


def _satterthwaite(test_var: float, seed_parts: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Total variance and Welch-Satterthwaite degrees of freedom; the DeLong part counts as known (df = inf)."""
    total = test_var + sum(v for v, _ in seed_parts)
    denominator = sum(v * v / df for v, df in seed_parts if v > 0)
    return total, (total * total / denominator if denominator > 0 else math.inf)


def mean_auc_interval(y, seed_scores, level: float = 0.95) -> dict[str, float]:
    """Mean test AUC over seeds and its ``level`` interval, from seed noise and test-set noise.

    Each seed's AUC is ``A_s = theta + b_s + e_s``: ``theta`` is the family's expected AUC on the
    population, ``e_s`` the seed's training noise and ``b_s`` the sampling error of the one test
    set. The seeds share that test set, so the ``b_s`` are strongly correlated and their mean does
    NOT shrink like ``1/S``: its variance is ``1' C 1 / S^2`` with ``C`` the DeLong covariance of
    the S seeds' AUCs (it equals the mean DeLong variance when the seeds' errors are identical,
    and ``mean var / S`` when independent; the covariance measures which). So

        Var(mean AUC) = s^2 / S + 1' C 1 / S^2

    with ``s^2`` the sample variance of the seeds' AUCs (ddof 1; it also contains the seed-by-
    test-row part of ``b_s``, counted twice, which errs on the wide side). The interval is
    ``mean +- t_q(df) sqrt(Var)``, ``df`` from Welch-Satterthwaite with the DeLong part taken as
    known: the normal quantile when test noise dominates, Student's with ``S - 1`` degrees of
    freedom when seed noise does. One seed: the test-set part only (``seed_var`` is 0).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    auc, cov = delong(y, seed_scores)
    test_var = float(cov.mean())
    seed_var, seed_df = _seed_variance(auc)
    var, df = _satterthwaite(test_var, [(seed_var, seed_df)])
    half = float(stats.t.ppf((1 + level) / 2, df)) * math.sqrt(var)
    mean = float(auc.mean())
    return {"mean": mean, "low": mean - half, "high": mean + half, "test_var": test_var,
            "seed_var": seed_var, "df": df, "seeds": len(auc)}


def compare_mean_aucs(y, a_scores, b_scores, alternative: str = "greater") -> dict[str, float]:
    """Test of entry a's expected AUC against entry b's, both scored on the same rows ``y``.

    DeLong's paired test generalised to several seeds a side: with ``S_a`` seeds of a and ``S_b``
    of b, the difference of mean AUCs is ``D = c' A`` with contrast
    ``c = (+1/S_a, ..., -1/S_b, ...)`` over all ``S_a + S_b`` prediction vectors, and

        Var(D) = c' C c + s_a^2 / S_a + s_b^2 / S_b

    where ``C`` is their joint DeLong covariance (test-set noise, pairing and the correlation
    between seeds all in one matrix) and ``s^2`` the seed variances as in
    :func:`mean_auc_interval`. ``t = D / sqrt(Var(D))`` against Student's t with Welch-
    Satterthwaite degrees of freedom; ``alternative="greater"`` tests a > b. With one seed a side
    it is exactly DeLong's paired z test. Combining per-seed z statistics by Stouffer's sum would
    treat the seeds' tests as independent though they share the test rows (too many differences
    called significant); averaging them is valid but leaves out seed noise, which this variance keeps.
    """
    a = np.atleast_2d(np.asarray(a_scores, dtype=float))
    b = np.atleast_2d(np.asarray(b_scores, dtype=float))
    auc, cov = delong(y, np.concatenate([a, b]))
    sa, sb = len(a), len(b)
    contrast = np.concatenate([np.full(sa, 1 / sa), np.full(sb, -1 / sb)])
    diff = float(contrast @ auc)
    test_var = max(float(contrast @ cov @ contrast), 0.0)
    var, df = _satterthwaite(test_var, [_seed_variance(auc[:sa]), _seed_variance(auc[sa:])])
    statistic = _z(diff, var)
    return {"diff": diff, "se": math.sqrt(var), "t": statistic, "df": df,
            "p": _p_value(statistic, alternative, df)}


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order.

    Sorted ascending, ``p_(i)`` becomes ``max_{j <= i} min(1, (k - j + 1) p_(j))``; rejecting where
    the adjusted value is below alpha keeps the family-wise error rate at alpha.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or not ((p >= 0) & (p <= 1)).all():
        raise ValueError(f"holm: expected a 1-D sequence of p-values in [0, 1], got {p.tolist()}")
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    out = np.empty_like(p)
    out[order] = adjusted
    return out


def close_to_best(y, scores: Mapping[str, np.ndarray], alpha: float = 0.05) -> dict[str, dict]:
    """For each row (label -> seed predictions ``[S, N]``), whether it is not significantly below the best.

    The best row has the highest mean AUC; every other row is tested with :func:`compare_mean_aucs` (one-sided)
    and the p-values are Holm-adjusted over those rows. ``close`` is True where the adjusted p is
    at least ``alpha``; the best row gets p = 1.
    """
    if not scores:
        raise ValueError("close_to_best: no rows to compare")
    means = {label: float(delong(y, s)[0].mean()) for label, s in scores.items()}
    best = max(means, key=means.get)
    others = [label for label in scores if label != best]
    tests = {label: compare_mean_aucs(y, scores[best], scores[label]) for label in others}
    adjusted = holm([tests[label]["p"] for label in others]) if others else []
    out = {best: {"mean": means[best], "p": 1.0, "p_holm": 1.0, "close": True, "best": True}}
    for label, p_holm in zip(others, adjusted, strict=True):
        out[label] = {"mean": means[label], "p": tests[label]["p"], "p_holm": float(p_holm),
                      "close": bool(p_holm >= alpha), "best": False}
    return out
