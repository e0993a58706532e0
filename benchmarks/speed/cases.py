"""What the speed report compares: the families at one common architecture, the targets, the settings."""

from __future__ import annotations

from dataclasses import dataclass

import models

ARCH = {"embed_dim": 16, "hidden_units": (128, 64, 32), "dropout": 0.1, "num_layers": 3, "rank": 16, "num_experts": 4}
_DEEP = {"embed_dim": ARCH["embed_dim"], "hidden_units": ARCH["hidden_units"], "dropout": ARCH["dropout"]}


@dataclass(frozen=True)
class Case:
    label: str
    model: str
    hparams: dict


# The families at the common architecture. DCN-Mix uses the paper's expert form (tanh and C),
# which is what both peers implement.
CASES: dict[str, Case] = {
    "fm": Case("FM", "fm", {"embed_dim": ARCH["embed_dim"]}),
    "ffm": Case("FFM", "ffm", {"embed_dim": ARCH["embed_dim"]}),
    "pnn_inner": Case("PNN, inner", "pnn", {**_DEEP, "product": "inner"}),
    "pnn_outer": Case("PNN, outer", "pnn", {**_DEEP, "product": "outer"}),
    "deepfm": Case("DeepFM", "deepfm", _DEEP),
    "nfm": Case("NFM", "nfm", _DEEP),
    "dcn_v2": Case("DCN-V2, 3 layers", "dcn_v2", {**_DEEP, "num_layers": ARCH["num_layers"]}),
    "dcn_mix": Case(
        "DCN-Mix, 3 layers, r 16, k 4", "dcn_mix",
        {**_DEEP, "num_layers": ARCH["num_layers"], "rank": ARCH["rank"], "num_experts": ARCH["num_experts"],
         "expert_form": "paper"},
    ),
}


# The model zoo (issue #14), each at its registry defaults except the common architecture's keys it takes;
# a name joins CASES only once it is registered.
ZOO = {"dnn": "DNN", "wide_deep": "Wide & Deep", "dcn_v1": "DCN (v1)", "xdeepfm": "xDeepFM", "autoint": "AutoInt+",
       "fibinet": "FiBiNET", "finalmlp": "FinalMLP", "gdcn": "GDCN", "masknet": "MaskNet", "wukong": "Wukong"}


def zoo_case(name: str) -> Case:
    """The zoo family ``name`` with the common architecture's values for the hyperparameters it has."""
    accepted = models.defaults(name)
    return Case(ZOO[name], name, {k: v for k, v in ARCH.items() if k in accepted})


CASES.update({name: zoo_case(name) for name in ZOO if name in models.available()})


@dataclass(frozen=True)
class Target:
    """Ours at least ``ratio`` x the fastest implementation of ``case`` in ``library`` (None: any peer)."""

    case: str
    library: str | None
    ratio: float

    def describe(self) -> str:
        whom = f"{self.library}" if self.library else "the fastest peer"
        return f"{CASES[self.case].label}: ours >= {self.ratio:g}x {whom} in samples/s"


SAMPLES_VS_PEER = 1.5  # issue 16: every family at least 1.5x its fastest peer in samples/s
TARGETS = (
    *(Target(case, None, 1.0) for case in CASES),
    *(Target(case, None, SAMPLES_VS_PEER) for case in CASES),
    Target("ffm", "pytorch-fm", 3.0),
    Target("pnn_outer", "pytorch-fm", 5.0),
    Target("pnn_outer", "DeepCTR-Torch", 5.0),
    Target("dcn_mix", "FuxiCTR", 2.0),
    Target("dcn_mix", "DeepCTR-Torch", 2.0),
)
QUALITY_VS_PEER = 1.0  # time to the common validation AUC: ours at least as soon as every peer
FIT_VS_BARE = 0.9  # fit within 10% of the bare loop
ROOFLINE_TARGETS = {"dcn_v2": 0.6}  # training, fraction of the fp32 matrix-multiply rate


@dataclass(frozen=True)
class Settings:
    rows: int = 200_000  # the synthetic set's 80/10/10 split gives 160k training rows
    epochs: int = 1
    batch_size: int = 1024
    rounds: int = 3
    latency_repeats: int = 15
    threads: int = 2
    seed: int = 0
    peers: bool = True
    memory: bool = True
    levers: bool = True
    compile_cases: tuple[str, ...] = ("fm", "deepfm", "dcn_v2")
    parity_seeds: int = 2
    lever_steps: int = 20
    quality_epochs: int = 15  # time to quality: at most this many epochs of each implementation
    quality_patience: int = 2  # ... stopping after this many epochs without a better validation AUC


QUICK = Settings(rows=5_000, rounds=1, latency_repeats=3, parity_seeds=1, compile_cases=(), lever_steps=3,
              quality_epochs=3)
