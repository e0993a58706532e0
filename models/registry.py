"""Registry of model families: ``models.build(name, schema, **hparams) -> nn.Module``.

A family's hyperparameters are the keyword arguments of its class after ``schema``; their
defaults are the reference study's configuration for the study's families and each paper's
recommended configuration (sized for a cheap training step) for the others. Adding a family = one file in
``models/`` + one line in ``_MODELS`` + its tests.
"""

from __future__ import annotations

import inspect

from torch import nn

from .autoint import AutoInt
from .dcn import DCNV2, DCNMix
from .dcn_v1 import DCNV1
from .deepfm import DeepFM
from .dnn import DNN
from .ffm import FieldAwareFactorizationMachine
from .fibinet import FiBiNET
from .finalmlp import FinalMLP
from .fm import FactorizationMachine
from .gdcn import GDCN
from .lr import LogisticRegression
from .lr_sklearn import SolvedLogisticRegression
from .masknet import MaskNet
from .nfm import NeuralFactorizationMachine
from .pnn import ProductNeuralNetwork
from .wide_deep import WideAndDeep
from .wukong import Wukong
from .xdeepfm import XDeepFM

_MODELS: dict[str, type[nn.Module]] = {
    "lr": LogisticRegression,
    "fm": FactorizationMachine,
    "ffm": FieldAwareFactorizationMachine,
    "pnn": ProductNeuralNetwork,
    "deepfm": DeepFM,
    "nfm": NeuralFactorizationMachine,
    "dcn_v2": DCNV2,
    "dcn_mix": DCNMix,
    "dnn": DNN,
    "wide_deep": WideAndDeep,
    "dcn_v1": DCNV1,
    "xdeepfm": XDeepFM,
    "autoint": AutoInt,
    "fibinet": FiBiNET,
    "finalmlp": FinalMLP,
    "gdcn": GDCN,
    "masknet": MaskNet,
    "wukong": Wukong,
    "lr_sklearn": SolvedLogisticRegression,
}


def available() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def defaults(name: str) -> dict:
    """The hyperparameters of model ``name`` with their default (study) values, in signature order."""
    parameters = list(inspect.signature(_model_class(name)).parameters.values())[1:]  # after ``schema``
    return {p.name: p.default for p in parameters}


def build(name: str, schema, **hparams) -> nn.Module:
    """Model ``name`` for ``schema``: int64 indices ``[B, F]``, or ``data.Features`` (indices and values) -> click
    logits ``[B]``.

    Unknown names raise KeyError, unknown hyperparameters TypeError, invalid values
    ValueError; each message says what is accepted.
    """
    cls = _model_class(name)
    accepted = list(defaults(name))
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise TypeError(f"model {name!r} got unknown hyperparameter(s) {unknown}; accepted: {accepted}")
    try:
        return cls(schema, **hparams)
    except ValueError as err:
        raise ValueError(f"model {name!r}: {err}") from err


def fitted_by_solver(name: str) -> bool:
    """Whether family ``name`` is fitted by its own solver (it defines ``fit_by_solver``) instead of the Adam loop:
    it picks its regularisation on the validation split itself, so ``--tune`` leaves it out."""
    return hasattr(_model_class(name), "fit_by_solver")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (entries of every parameter with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _model_class(name: str) -> type[nn.Module]:
    try:
        return _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {available()}") from None
