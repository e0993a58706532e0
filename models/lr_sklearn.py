"""Logistic regression fitted to convergence by scikit-learn: the reference row of the linear model.

The model is :class:`~models.lr.LogisticRegression` (the same ``logit = w_0 + sum_f w[x_f] value_f``)
with a solver hook: ``fit_by_solver(train, val)``. The shared ``fit`` calls a family's
``fit_by_solver`` instead of its Adam loop when the family defines one, then evaluates and records
it like every other family.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.sparse
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.metrics import log_loss

from . import checks
from .lr import LogisticRegression

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)  # inverse L2 strengths tried, each a full lbfgs fit


def design_matrix(split, num_features: int) -> scipy.sparse.csr_matrix:
    """The ``[N, num_features]`` sparse design matrix of the field:index:value form: row n holds, in column
    ``x_nf``, the value ``value_nf`` of each field f (1 for indices without values: one-hot)."""
    index = np.asarray(split.x, dtype=np.int64)
    rows, fields = index.shape
    value = np.ones(index.size, np.float64) if split.values is None else np.asarray(split.values, np.float64).ravel()
    return scipy.sparse.csr_matrix((value, index.ravel(), np.arange(0, rows * fields + 1, fields)),
                                   shape=(rows, num_features))


class SolvedLogisticRegression(LogisticRegression):
    """``logit = w_0 + sum_f w[x_f] value_f``, fitted by scikit-learn's ``LogisticRegression`` (lbfgs, L2 on w,
    not on w_0) on the sparse design matrix (:func:`design_matrix`), for each inverse strength ``C`` of
    ``c_grid``; the ``C`` with the lowest validation log loss is kept and its coefficients copied into
    the first-order weights."""

    def __init__(self, schema, c_grid=C_GRID, max_iter: int = 1000, tol: float = 1e-6):
        super().__init__(schema)
        self.c_grid = checks.positive_numbers("c_grid", c_grid)
        self.max_iter = checks.positive_int("max_iter", max_iter)
        self.tol = checks.positive_number("tol", tol)

    def fit_by_solver(self, train, val) -> dict:
        """Fit on ``train`` for every ``C``, keep the best on ``val``; what was done, for the record."""
        num_features = self.first_order.weight.num_embeddings
        x_train, x_val = design_matrix(train, num_features), design_matrix(val, num_features)
        y_train, y_val = np.asarray(train.y), np.asarray(val.y)
        by_c, best, unconverged, start = {}, None, [], time.perf_counter()
        for c in self.c_grid:
            solver = SklearnLogisticRegression(C=c, solver="lbfgs", max_iter=self.max_iter, tol=self.tol)
            with warnings.catch_warnings():  # non-convergence is recorded per C below, not printed per fit
                warnings.simplefilter("ignore", ConvergenceWarning)
                solver.fit(x_train, y_train)
            if solver.n_iter_[0] >= self.max_iter:
                unconverged.append(c)
            by_c[c] = float(log_loss(y_val, solver.predict_proba(x_val)[:, 1], labels=[0, 1]))
            if best is None or by_c[c] < by_c[best[0]]:
                best = (c, solver)
        c, solver = best
        if c in unconverged:
            warnings.warn(f"lr_sklearn: lbfgs stopped at max_iter={self.max_iter} before converging for the chosen "
                          f"C={c}; raise max_iter", stacklevel=2)
        with torch.no_grad():
            self.first_order.weight.weight.copy_(torch.as_tensor(solver.coef_.reshape(-1, 1)))
            self.first_order.bias.copy_(torch.as_tensor(solver.intercept_))
        return {"solver": "scikit-learn LogisticRegression, lbfgs, L2", "C": c,
                "val_logloss_by_C": {str(k): v for k, v in by_c.items()}, "iterations": int(solver.n_iter_[0]),
                "not_converged_C": unconverged,
                "seconds": time.perf_counter() - start}
