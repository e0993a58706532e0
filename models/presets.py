"""The reference study's configurations as data: its comparison table and its DCN-Mix tuning grid.

Each :class:`Preset` names a registered model and spells out every hyperparameter, so the
configuration stays fixed even if a family's defaults change. ``study_params`` and
``study_auc`` are the study's reported figures (validation AUC on its private data), or
None where it reported none.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import nn

from .registry import build


@dataclass(frozen=True)
class Preset:
    label: str
    model: str
    hparams: dict
    study_params: int | None
    study_auc: float | None

    def build(self, schema) -> nn.Module:
        return build(self.model, schema, **self.hparams)


def _dcn(label, model, num_layers, combine, params, auc, **cross_hparams) -> Preset:
    hparams = {"embed_dim": 16, "num_layers": num_layers, "combine": combine, **cross_hparams,
               "hidden_units": (128, 64, 32), "dropout": 0.1, "batch_norm": True}
    return Preset(label, model, hparams, params, auc)


def _dcn_mix(num_layers: int, combine: str, params: int | None, auc: float) -> Preset:
    label = f"DCN-Mix {combine}, {num_layers} layer{'s' if num_layers > 1 else ''}"
    return _dcn(label, "dcn_mix", num_layers, combine, params, auc,
                rank=16, num_experts=4, gate="softmax", expert_form="study")


_DNN = {"hidden_units": (64, 16), "dropout": 0.1, "batch_norm": True}

# Validation AUC of DCN-Mix by number of cross layers and combination; the study reported
# parameter counts only for the two configurations of its comparison table.
DCN_MIX_TUNING: dict[str, Preset] = {
    p.label: p
    for p in (
        _dcn_mix(1, "parallel", 54_501, 0.6345),
        _dcn_mix(2, "parallel", None, 0.6328),
        _dcn_mix(3, "parallel", None, 0.6331),
        _dcn_mix(4, "parallel", None, 0.6340),
        _dcn_mix(1, "stacked", None, 0.6321),
        _dcn_mix(2, "stacked", None, 0.6323),
        _dcn_mix(3, "stacked", 97_869, 0.6333),
        _dcn_mix(4, "stacked", None, 0.6331),
    )
}

# The comparison table of all families, in the study's order, plus the LR baseline it lacks.
STUDY_PRESETS: dict[str, Preset] = {
    p.label: p
    for p in (
        Preset("LR", "lr", {}, None, None),
        Preset("FM", "fm", {"embed_dim": 4}, 361, 0.6274),
        Preset("FFM", "ffm", {"embed_dim": 4}, 2_953, 0.6317),
        Preset("PNN", "pnn", {"embed_dim": 16, "product": "both", **_DNN}, 29_953, 0.6342),
        Preset("DeepFM", "deepfm", {"embed_dim": 16, **_DNN}, 12_746, 0.6322),
        Preset("NFM", "nfm", {"embed_dim": 64, **_DNN}, 10_186, 0.6329),
        _dcn("DCN-V2 parallel, 3 layers", "dcn_v2", 3, "parallel", 110_017, 0.6348),
        _dcn("DCN-V2 stacked, 3 layers", "dcn_v2", 3, "stacked", 109_857, 0.6344),
        DCN_MIX_TUNING["DCN-Mix parallel, 1 layer"],
        DCN_MIX_TUNING["DCN-Mix stacked, 3 layers"],
    )
}


def preset(label: str) -> Preset:
    """The preset called ``label`` (comparison table or DCN-Mix tuning grid), with its own hparams dict."""
    found = STUDY_PRESETS.get(label) or DCN_MIX_TUNING.get(label)
    if found is None:
        raise KeyError(f"unknown preset {label!r}; available: {list(STUDY_PRESETS) + list(DCN_MIX_TUNING)}")
    return dataclasses.replace(found, hparams=dict(found.hparams))
