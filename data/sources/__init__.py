"""Readers of raw data sets; importing this package registers their loaders.

Each source turns its raw files into chunks of raw columns plus a label and declares how each
column is encoded; ``data.pipeline.load_source`` runs the shared pipeline (checks, split, encoder,
audit, cache).
"""

from . import avazu, criteo, libffm, movielens, table  # noqa: F401  (register the loaders)
