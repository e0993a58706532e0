"""Everything before the model: schemas, encoded data sets, splits and batches.

>>> import data
>>> d = data.load("synthetic")
>>> d.schema.num_fields, d.schema.num_features
(10, 72)
"""

from . import sources  # noqa: F401, I001  (registers "ml100k", "ml100k-implicit", "criteo", "avazu", "table")
from . import synthetic  # noqa: F401  (registers "synthetic")
from .batches import batches, num_batches
from .encoding import DataError as DataError
from .registry import available, load, options, register
from .schema import Dataset, Field, Schema, Split, validate_split

__all__ = [
    "Dataset", "Field", "Schema", "Split", "available", "batches", "load", "num_batches",
    "options", "register", "validate_split",
]
