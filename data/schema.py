"""Data contracts: Field, Schema, Split, Dataset.

A data set is F fields. Field ``f`` owns the global feature indices
``offsets[f] .. offsets[f] + vocab_size - 1``; a row is the vector of its F global
indices, exactly as in the reference study (10 fields, 72 features -> indices 0..71).
Encoders of real data reserve local index 0 of a field as its out-of-vocabulary slot
(``Field.oov=True``) and count it inside ``vocab_size``.

A field has a kind (``FIELD_KINDS``): ``categorical`` (a value per index), ``bucketed`` (a
number cut into bins or log buckets, each bin an index) or ``numeric`` (a number kept as a
value: local index ``NUMBER`` carries the normalised number, local index ``NUMBER_MISSING``
marks a missing one). A data set with a numeric field carries, beside the indices, a value per
field and row (``Split.values``; 1 for fields that are not ``valued``), and its batches are ``Features``:
the field:index:value form of FM and libFFM. Data sets without valued fields carry no values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .storage import OnDisk


FIELD_KINDS = ("categorical", "bucketed", "numeric")
NUMBER, NUMBER_MISSING = 0, 1  # the local indices of a numeric field


@dataclass(frozen=True)
class Field:
    """One field with ``vocab_size`` local values ``0 .. vocab_size - 1`` and a ``kind`` (``FIELD_KINDS``).

    ``oov=True`` means local index 0 is the out-of-vocabulary bucket: values never seen
    in training (or too rare) map there. A ``numeric`` field has exactly two local values,
    ``NUMBER`` (its value is the normalised number) and ``NUMBER_MISSING``, and no OOV slot.
    ``valued`` says whether the field carries a value per row: always for a numeric field (set
    here), and for a categorical field read with values (libFFM's ``field:index:value``).
    """

    name: str
    vocab_size: int
    oov: bool = False
    kind: str = "categorical"
    valued: bool = False

    def __post_init__(self):
        if self.kind == "numeric":
            object.__setattr__(self, "valued", True)
        if not isinstance(self.vocab_size, int) or self.vocab_size < 1:
            raise ValueError(
                f"Field {self.name!r}: vocab_size must be a positive integer, got {self.vocab_size!r}"
            )
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"Field {self.name!r}: kind must be one of {FIELD_KINDS}, got {self.kind!r}")
        if self.kind == "numeric" and (self.vocab_size != 2 or self.oov):
            raise ValueError(f"Field {self.name!r}: a numeric field has vocab_size 2 (the number, missing) and "
                             f"no OOV slot, got vocab_size={self.vocab_size}, oov={self.oov}")
        if self.oov and self.vocab_size < 2:
            raise ValueError(
                f"Field {self.name!r}: a field with an OOV slot needs vocab_size >= 2, got {self.vocab_size}"
            )


class Schema:
    """Ordered fields; global index = ``offsets[field] + local index``."""

    def __init__(self, fields):
        self.fields = tuple(fields)
        if not self.fields:
            raise ValueError("Schema needs at least one field, got none")
        names = [f.name for f in self.fields]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"Schema field names must be unique, duplicated: {duplicated}")
        sizes = [f.vocab_size for f in self.fields]
        self.offsets = tuple(sum(sizes[:i]) for i in range(len(sizes)))

    @property
    def num_fields(self) -> int:
        return len(self.fields)

    @property
    def num_features(self) -> int:
        return self.offsets[-1] + self.fields[-1].vocab_size

    @property
    def has_values(self) -> bool:
        """Whether a row carries values (some field is ``valued``: every numeric one)."""
        return any(f.valued for f in self.fields)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def index(self, name: str) -> int:
        """Position of the field called ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no field {name!r}; fields are {list(self.names)}") from None

    def global_index(self, name: str, local: int) -> int:
        """Global feature index of local value ``local`` of field ``name``."""
        f = self.index(name)
        size = self.fields[f].vocab_size
        if not 0 <= local < size:
            raise IndexError(f"field {name!r}: local index {local} outside 0..{size - 1}")
        return self.offsets[f] + local

    def oov_index(self, name: str) -> int:
        """Global index of the out-of-vocabulary slot of field ``name``."""
        f = self.index(name)
        if not self.fields[f].oov:
            raise ValueError(f"field {name!r} has no out-of-vocabulary slot (Field.oov is False)")
        return self.offsets[f]

    def field_of_feature(self) -> torch.Tensor:
        """``[num_features]`` tensor: the field position owning each global index."""
        sizes = torch.tensor([f.vocab_size for f in self.fields])
        return torch.repeat_interleave(torch.arange(self.num_fields), sizes)

    def to_dict(self) -> dict:
        return {"fields": [{"name": f.name, "vocab_size": f.vocab_size, "oov": f.oov, "kind": f.kind,
                            "valued": f.valued} for f in self.fields]}

    @classmethod
    def from_dict(cls, d: dict) -> Schema:
        return cls(Field(**f) for f in d["fields"])

    def __eq__(self, other):
        return isinstance(other, Schema) and self.fields == other.fields

    def __hash__(self):
        return hash(self.fields)

    def __repr__(self):
        inner = ", ".join(f"{f.name}:{f.vocab_size}" for f in self.fields)
        return f"Schema({self.num_fields} fields, {self.num_features} features: {inner})"


@dataclass(frozen=True)
class Features:
    """A batch in field:index:value form: ``index`` int64 ``[B, F]`` global indices and ``value``
    float32 ``[B, F]`` (the normalised number of a numeric field, 1 elsewhere).

    Models take either a plain index tensor (every value 1) or ``Features``; the shared blocks
    of ``models/layers.py`` read the values, so no family needs code of its own. The few tensor
    operations the training loop applies to a batch (rows, slices, ``tensor_split``, device
    moves) act on both parts.
    """

    index: torch.Tensor
    value: torch.Tensor

    def __len__(self) -> int:
        return self.index.shape[0]

    @property
    def shape(self) -> torch.Size:
        return self.index.shape

    def __getitem__(self, rows) -> Features:
        return Features(self.index[rows], self.value[rows])

    def tensor_split(self, sections: int) -> list[Features]:
        return [Features(i, v) for i, v in zip(self.index.tensor_split(sections), self.value.tensor_split(sections),
                                                strict=True)]

    def to(self, device, non_blocking: bool = False) -> Features:
        return Features(self.index.to(device, non_blocking=non_blocking),
                        self.value.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Features:
        return Features(self.index.pin_memory(), self.value.pin_memory())


@dataclass
class Split:
    """Rows of one split: ``x`` int64 ``[N, F]`` global indices, ``y`` float ``[N]`` of 0/1.

    ``values`` float32 ``[N, F]`` holds the value of every field of every row when the schema
    has valued fields (None otherwise); ``rows`` then returns ``Features``.

    ``prob`` optionally holds the true click probability of every row (known for synthetic
    and generated data): the oracle no model beats in expectation. ``disk`` is set when the
    tensors are memory maps of ``.npy`` files (``data.storage.OnDisk``): ``data.batches`` then
    reads blocks of rows from those files instead of indexing the tensors.
    """

    x: torch.Tensor
    y: torch.Tensor
    prob: torch.Tensor | None = None
    disk: OnDisk | None = None
    values: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def features(self, rows=slice(None)) -> torch.Tensor | Features:
        """The model input of ``rows``: ``x[rows]``, or ``Features`` when the split has values."""
        return self.x[rows] if self.values is None else Features(self.x[rows], self.values[rows])

    @property
    def positive_rate(self) -> float:
        return float(self.y.mean())


@dataclass
class Dataset:
    """A named, encoded data set: schema, train/val/test splits and an audit ``info`` dict."""

    name: str
    schema: Schema
    train: Split
    val: Split
    test: Split
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for split_name in ("train", "val", "test"):
            validate_split(getattr(self, split_name), self.schema, split_name, self.name)

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.splits().items()}


def validate_split(split: Split, schema: Schema, split_name: str, dataset: str = "") -> None:
    """Check shapes, dtypes, index ranges and labels; errors name split, field and a bad row.

    A memory-mapped split (``split.disk``) gets the shape and dtype checks only: its values
    were bounded by the encoder that wrote them, and scanning them would read the whole file.
    """
    where = f"{dataset + ': ' if dataset else ''}split {split_name!r}"
    x, y = split.x, split.y
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"{where}: x must be a 2-D tensor [rows, fields], got {_describe(x)}")
    if x.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{where}: x must hold integer indices (int64), got dtype {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: the split is empty (0 rows); every split needs at least one row")
    if x.shape[1] != schema.num_fields:
        raise ValueError(
            f"{where}: x has {x.shape[1]} columns but the schema has {schema.num_fields} fields {list(schema.names)}"
        )
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{where}: y must be a 1-D tensor with {x.shape[0]} labels, got {_describe(y)}")
    if split.prob is not None and (split.prob.shape != y.shape):
        raise ValueError(f"{where}: prob must match y's shape {tuple(y.shape)}, got {tuple(split.prob.shape)}")
    if schema.has_values != (split.values is not None):
        raise ValueError(f"{where}: values must be given exactly when the schema has valued fields "
                         f"(it has {'some' if schema.has_values else 'none'})")
    if split.values is not None and (split.values.shape != x.shape or not split.values.is_floating_point()):
        raise ValueError(f"{where}: values must be a float tensor of x's shape {tuple(x.shape)}, "
                         f"got {split.values.dtype} {tuple(split.values.shape)}")
    if split.disk is not None:
        return
    bad = ~((y == 0) | (y == 1))
    if bad.any():
        row = int(bad.nonzero()[0])
        raise ValueError(f"{where}: labels must be 0 or 1, row {row} has label {y[row].item()!r}")
    lo = torch.tensor(schema.offsets)
    hi = lo + torch.tensor([f.vocab_size for f in schema.fields])
    outside = (x < lo) | (x >= hi)
    if outside.any():
        row, col = (int(v) for v in outside.nonzero()[0])
        f = schema.fields[col]
        raise ValueError(
            f"{where}: field {f.name!r} (column {col}) row {row} has global index {int(x[row, col])}, "
            f"expected {int(lo[col])}..{int(hi[col]) - 1} (offset {int(lo[col])} + local 0..{f.vocab_size - 1})"
        )


def _describe(t) -> str:
    if isinstance(t, torch.Tensor):
        return f"tensor of shape {tuple(t.shape)}"
    return type(t).__name__
