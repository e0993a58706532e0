"""The loader options that say, per numeric column, value or bins, and the scaling of a value.

``NumericOptions`` adds two options to ``LoadOptions``:

* ``numeric_as``: ``"bins"`` (the loader's buckets: quantile bins with ``num_bins``, Criteo's
  log buckets), ``"value"`` (the number kept as a value, ``data.numeric``), an integer ``n >= 2``
  (quantile bins with ``n`` bins), or a dict ``{column: "bins" | "value" | n}``; a column the
  dict does not name is ``"bins"``;
* ``scaling``: how a value column is normalised, one of ``data.numeric.SCALINGS``
  (``"standardize"`` by default), or a dict ``{column: scaling}`` (unnamed value columns get
  ``"standardize"``); a dict may name value columns only.

Both are checked at the door: shapes and choices in ``check``, column names in ``specs``, which
the loader calls with its numeric columns once it knows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .encoding import FieldSpec
from .numeric import SCALINGS, check_scaling
from .pipeline import LoadOptions

CHOICES = ("bins", "value")


@dataclass(frozen=True)
class NumericOptions(LoadOptions):
    """``LoadOptions`` and ``numeric_as`` / ``scaling`` (see the module)."""

    numeric_as: str | int | dict = "bins"
    scaling: str | dict = "standardize"

    def check(self, dataset: str) -> None:
        super().check(dataset)
        choices = self.numeric_as.values() if isinstance(self.numeric_as, dict) else [self.numeric_as]
        for choice in choices:
            _check_choice(choice, dataset)
        scalings = self.scaling.values() if isinstance(self.scaling, dict) else [self.scaling]
        for scaling in scalings:
            check_scaling(scaling, dataset)

    def specs(self, dataset: str, columns, bins_kind: str = "quantile") -> list[FieldSpec]:
        """The ``FieldSpec`` of each numeric column of ``columns``; ``bins_kind`` is what ``"bins"`` means.

        Raises ``ValueError`` naming dict keys that are not numeric columns of the data set, or
        a ``scaling`` key whose column is not kept as a value.
        """
        columns = list(columns)
        choice = self.numeric_as if isinstance(self.numeric_as, dict) else dict.fromkeys(columns, self.numeric_as)
        scaling = self.scaling if isinstance(self.scaling, dict) else {}
        for option, keys in (("numeric_as", choice), ("scaling", scaling)):
            unknown = sorted(set(keys) - set(columns), key=str)
            if unknown:
                raise ValueError(f"{dataset}: {option} names unknown column(s) {unknown}; "
                                 f"the numeric columns are {columns}")
        binned = sorted(c for c in scaling if choice.get(c, "bins") != "value")
        if binned:
            raise ValueError(f"{dataset}: scaling names column(s) {binned} that are not kept as values; "
                             "give numeric_as='value' for them or leave them out of scaling")
        default = self.scaling if isinstance(self.scaling, str) else SCALINGS[0]
        specs = []
        for column in columns:
            how = choice.get(column, "bins")
            if how == "value":
                specs.append(FieldSpec(column, "value", scaling=scaling.get(column, default)))
            elif how == "bins":
                specs.append(FieldSpec(column, bins_kind))
            else:
                specs.append(FieldSpec(column, "quantile", num_bins=how))
        return specs


def _check_choice(choice, dataset: str) -> None:
    if choice in CHOICES or (isinstance(choice, int) and not isinstance(choice, bool) and choice >= 2):
        return
    raise ValueError(f"{dataset}: numeric_as must be 'bins', 'value', an integer bin count >= 2, or a dict "
                     f"{{column: one of those}}; got {choice!r}")
