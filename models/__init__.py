"""CTR model families built from shared layers, and their registry.

>>> import data, models
>>> schema = data.load("synthetic", rows=1000).schema
>>> model = models.build("dcn_mix", schema, num_layers=2, gate="sigmoid")
>>> models.count_parameters(models.preset("FM").build(schema))
361
"""

from .presets import DCN_MIX_TUNING, STUDY_PRESETS, Preset, preset
from .registry import available, build, count_parameters, defaults, fitted_by_solver

__all__ = [
    "DCN_MIX_TUNING", "STUDY_PRESETS", "Preset", "available", "build", "count_parameters", "defaults",
    "fitted_by_solver", "preset",
]
