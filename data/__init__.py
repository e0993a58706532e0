"""Everything before the model: schemas, encoded data sets, splits and batches.

>>> import data
>>> d = data.load("synthetic")
>>> d.schema.num_fields, d.schema.num_features
(10, 72)
"""

from . import sources, synthetic, synthetic_numeric  # noqa: F401  (register their data sets)
from .batches import batches, num_batches
from .pipeline import LoadOptions
from .raw import DataError
from .registry import available, load, options, register
from .schema import Dataset, Features, Field, Schema, Split, validate_split

__all__ = [
    "DataError", "Dataset", "Features", "Field", "LoadOptions", "Schema", "Split", "available", "batches", "load",
    "num_batches", "options", "register", "validate_split",
]
