"""Numbers kept as values: the scalings a numeric field may use, fitted on training rows in one
streaming pass, and the mapping of raw numbers to (local index, value).

A present number ``x`` becomes local index ``NUMBER`` with the value

    v = clip((t(x) - center) / scale, low, high)

and a missing one local index ``NUMBER_MISSING`` with value 1.0. The value of a missing number
is 1, not 0: the model's vector (and first-order weight) of the missing slot is multiplied by
its value, and a value of 0 would wipe it out, so the model could never learn what "missing"
means. The scalings (``SCALINGS``):

* ``"standardize"`` (the default): ``t(x) = x``, center = train mean, scale = train standard
  deviation (population), clipped to ``[-5, 5]``;
* ``"log1p"``: for heavy tails, ``t(x) = sign(x) * log1p(|x|)``, then standardised as above on
  the training ``t(x)``, clipped to ``[-5, 5]``;
* ``"minmax"``: ``t(x) = x``, center = train minimum, scale = train max - min, clipped to
  ``[0, 1]`` (a val/test number outside the training range lands on the nearest end).

A scale of 0 (a constant training column, or no training number at all) is taken as 1, so
such a column's present values are 0 (standardise) or its clipped offset from the minimum.
The statistics are merged chunk by chunk (count, mean, sum of squared deviations by Chan's
update, min, max), so no copy of the column is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .schema import NUMBER, NUMBER_MISSING

SCALINGS = ("standardize", "minmax", "log1p")
CLIP = {"standardize": (-5.0, 5.0), "log1p": (-5.0, 5.0), "minmax": (0.0, 1.0)}


def check_scaling(scaling, where: str) -> None:
    """Raise a one-line ``ValueError`` if ``scaling`` is not one of ``SCALINGS``."""
    if scaling not in SCALINGS:
        raise ValueError(f"{where}: scaling must be one of {SCALINGS}, got {scaling!r}")


def _transformed(scaling: str, x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x)) if scaling == "log1p" else x


class NumberStats:
    """Streaming training statistics of one column under ``scaling``; ``finish()`` gives the ``Scaler``."""

    def __init__(self, scaling: str):
        self.scaling = scaling
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.low, self.high = np.inf, -np.inf

    def add(self, x: np.ndarray) -> None:
        """Fold in the present numbers of ``x`` (NaN = missing, skipped)."""
        t = _transformed(self.scaling, x[~np.isnan(x)])
        if not len(t):
            return
        n, mean = len(t), float(t.mean())
        m2 = float(((t - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        self.low, self.high = min(self.low, float(t.min())), max(self.high, float(t.max()))

    def finish(self) -> Scaler:
        if self.scaling == "minmax":
            center, scale = (self.low, self.high - self.low) if self.count else (0.0, 0.0)
        else:
            center, scale = self.mean, (self.m2 / self.count) ** 0.5 if self.count else 0.0
        return Scaler(self.scaling, center, scale if scale > 0 else 1.0, self.count)


@dataclass(frozen=True)
class Scaler:
    """A fitted scaling: ``v = clip((t(x) - center) / scale, *CLIP[scaling])`` (see the module)."""

    scaling: str
    center: float
    scale: float
    count: int

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(local [n] int64, value [n] float32, clipped [n] bool)`` of raw numbers ``x`` (NaN = missing)."""
        missing = np.isnan(x)
        low, high = CLIP[self.scaling]
        scaled = (_transformed(self.scaling, np.where(missing, self.center, x)) - self.center) / self.scale
        clipped = ((scaled < low) | (scaled > high)) & ~missing
        value = np.where(missing, 1.0, np.clip(scaled, low, high)).astype(np.float32)
        return np.where(missing, NUMBER_MISSING, NUMBER).astype(np.int64), value, clipped

    def describe(self) -> dict:
        """The fitted statistics for the audit (``info["numeric"]``)."""
        low, high = CLIP[self.scaling]
        names = ("min", "range") if self.scaling == "minmax" else ("mean", "std")
        fitted = {names[0]: self.center, names[1]: self.scale}
        if self.scaling == "log1p":
            fitted = {f"{k} of sign(x)*log1p(|x|)": v for k, v in fitted.items()}
        return {"scaling": self.scaling, **fitted, "train_numbers": self.count, "clip": [low, high]}

    def to_dict(self) -> dict:
        return {"scaling": self.scaling, "center": self.center, "scale": self.scale, "count": self.count}
