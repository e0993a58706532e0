"""Peer implementations of our families, timed side by side with ours by ``python -m benchmarks.speed``.

The peers are pytorch-fm (``torchfm``), DeepCTR-Torch (``deepctr_torch``) and FuxiCTR (``fuxictr``),
the optional extra ``peers``. Their code is only imported, and only when a peer is built: the
core suite never needs them. Each :class:`Peer` wraps one peer model at our common
architecture (the ``arch`` dict of ``benchmarks.speed``) and says how it takes our data:
``encode`` turns our global index batch ``[N, F]`` into the peer's input once, before timing.

- pytorch-fm models take per-field local indices and return probabilities.
- DeepCTR-Torch models take a float ``[N, F]`` of local indices and return probabilities
  ``[N, 1]``; they also have their own ``fit``, timed as ``own_fit``. Importing the package
  starts a background request to the package index: :func:`_import_deepctr` hands it a
  stub ``requests`` that answers at once, so no network traffic runs during timing.
- FuxiCTR's pip package holds its layers but no ready models (those live in its model zoo),
  and importing ``fuxictr.pytorch.layers`` pulls its data pipeline (ray, polars). Its cross
  nets and ``MLP_Block`` are loaded from their own source files and composed in
  :class:`FuxiDCN` as its model zoo's DCNv2 composes them.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import io
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from data import Dataset, Schema

# Display name -> (pip distribution, import name).
LIBRARIES = {
    "pytorch-fm": ("torchfm", "torchfm"),
    "DeepCTR-Torch": ("deepctr-torch", "deepctr_torch"),
    "FuxiCTR": ("fuxictr", "fuxictr"),
}
INSTALL_HINT = "pip install --no-deps torchfm==0.7.0 deepctr-torch==0.3.0 fuxictr==2.3.10"


def installed() -> dict[str, str | None]:
    """Version of each peer library, or None where it is not installed (nothing is imported)."""
    versions = {}
    for library, (distribution, module) in LIBRARIES.items():
        try:
            versions[library] = importlib.metadata.version(distribution) if importlib.util.find_spec(module) else None
        except importlib.metadata.PackageNotFoundError:
            versions[library] = None
    return versions


@dataclass(frozen=True)
class Peer:
    """One peer implementation of the family ``case``.

    ``make(schema, arch)`` builds the model, ``encode(x, schema)`` turns global indices into
    its input, its output is a probability (``probabilities=True``) or a logit of shape
    ``[B]`` or ``[B, 1]``, and ``own_fit(model, dataset, epochs, batch_size) -> seconds``
    trains it through the library's own API where it has one.
    """

    case: str
    library: str
    label: str
    make: Callable[[Schema, dict], nn.Module]
    encode: Callable[[torch.Tensor, Schema], torch.Tensor]
    probabilities: bool = True
    own_fit: Callable[[nn.Module, Dataset, int, int], float] | None = None

    @property
    def name(self) -> str:
        return f"{self.library} {self.label}"


def local_indices(x: torch.Tensor, schema: Schema) -> torch.Tensor:
    """Per-field local indices ``[N, F]`` (int64) of global indices ``x``."""
    return x - torch.tensor(schema.offsets)


def _float_local_indices(x: torch.Tensor, schema: Schema) -> torch.Tensor:
    return local_indices(x, schema).float()


def _global_indices(x: torch.Tensor, schema: Schema) -> torch.Tensor:
    return x


def _field_dims(schema: Schema) -> list[int]:
    return [f.vocab_size for f in schema.fields]


# ---- pytorch-fm -------------------------------------------------------------------------------

Hparams = Callable[[dict], dict]  # our common architecture -> the peer's keyword arguments


def _torchfm(module: str, cls: str, hparams: Hparams) -> Callable[[Schema, dict], nn.Module]:
    def make(schema: Schema, arch: dict) -> nn.Module:
        model_class = getattr(importlib.import_module(f"torchfm.model.{module}"), cls)
        return model_class(_field_dims(schema), **hparams(arch))

    return make


def _embed(arch: dict) -> dict:
    return {"embed_dim": arch["embed_dim"]}


def _mlp(arch: dict) -> dict:
    return {"embed_dim": arch["embed_dim"], "mlp_dims": arch["hidden_units"], "dropout": arch["dropout"]}


# ---- DeepCTR-Torch ----------------------------------------------------------------------------


def _stub_requests() -> types.ModuleType:
    """A ``requests`` whose ``get`` answers 'not OK' at once: DeepCTR-Torch's version check then stays silent."""
    stub = types.ModuleType("requests")
    stub.codes = types.SimpleNamespace(ok=200)
    stub.get = lambda *args, **kwargs: types.SimpleNamespace(status_code=0, text="")
    return stub


def _import_deepctr() -> types.ModuleType:
    if "deepctr_torch" not in sys.modules:
        real = sys.modules.get("requests")
        sys.modules["requests"] = _stub_requests()
        try:
            importlib.import_module("deepctr_torch")
        finally:
            if real is None:
                del sys.modules["requests"]
            else:
                sys.modules["requests"] = real
    return sys.modules["deepctr_torch"]


def _deepctr(cls: str, hparams: Hparams = lambda arch: {}, **fixed) -> Callable[[Schema, dict], nn.Module]:
    """DeepCTR-Torch model ``cls`` with no L2 penalties (ours has none) and our DNN widths and dropout."""

    def make(schema: Schema, arch: dict) -> nn.Module:
        deepctr = _import_deepctr()
        columns = [
            deepctr.inputs.SparseFeat(f.name, f.vocab_size, embedding_dim=arch["embed_dim"]) for f in schema.fields
        ]
        model_class = getattr(deepctr.models, cls)
        accepted = inspect.signature(model_class).parameters
        penalties = {k: 0.0 for k in accepted if k.startswith("l2_reg_")}  # every L2 penalty it has
        linear = [] if cls == "PNN" else [columns]  # PNN takes only the DNN columns and has no linear part
        seed = int(torch.randint(0, 2**31 - 1, ()).item())  # follows torch.manual_seed like ours
        return model_class(
            *linear, columns, dnn_hidden_units=arch["hidden_units"], dnn_dropout=arch["dropout"], seed=seed,
            **penalties, **hparams(arch), **fixed,
        )

    return make


def _deepctr_fit(model: nn.Module, dataset: Dataset, epochs: int, batch_size: int) -> float:
    """Train through DeepCTR-Torch's own ``compile`` + ``fit`` (Adam, lr 1e-3, silent); returns wall seconds."""
    x = _float_local_indices(dataset.train.x, dataset.schema).numpy()
    y = dataset.train.y.numpy().astype(np.float32)
    model.compile("adam", "binary_crossentropy")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the device and the sample counts
        start = time.perf_counter()
        model.fit(list(x.T), y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
        return time.perf_counter() - start


# ---- FuxiCTR ----------------------------------------------------------------------------------


def _fuxictr_module(path: str) -> types.ModuleType:
    """The FuxiCTR module in ``fuxictr/<path>``, loaded from its source file without the package's data pipeline."""
    name = "_ctrbench_fuxictr_" + path.replace("/", "_").removesuffix(".py")
    if name not in sys.modules:
        root = Path(importlib.util.find_spec("fuxictr").origin).parent
        spec = importlib.util.spec_from_file_location(name, root / path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


class FuxiDCN(nn.Module):
    """FuxiCTR's parallel DCN (as its model zoo's DCNv2 composes it) from its own blocks.

    ``cat(cross_net(e), MLP_Block(e)) -> Linear(., 1)`` over one ``nn.Embedding`` on the global
    indices (FuxiCTR keeps one per field; one table is the same lookup, done once). Initialised
    as FuxiCTR's models initialise themselves (``BaseModel.reset_parameters``): every
    ``nn.Linear`` Xavier-normal with zero bias, the embeddings N(0, 1e-4^2) (its
    ``FeatureEmbedding`` default); the mixture cross net keeps its own Xavier-normal parameters.
    """

    EMBEDDING_STD = 1e-4

    def __init__(self, schema: Schema, arch: dict, cross_net: nn.Module):
        super().__init__()
        width = schema.num_fields * arch["embed_dim"]
        mlp_block = _fuxictr_module("pytorch/layers/blocks/mlp_block.py").MLP_Block
        self.embedding = nn.Embedding(schema.num_features, arch["embed_dim"])
        self.cross_net = cross_net
        self.dnn = mlp_block(width, hidden_units=list(arch["hidden_units"]), hidden_activations="ReLU",
                             dropout_rates=arch["dropout"], batch_norm=True)
        self.fc = nn.Linear(width + arch["hidden_units"][-1], 1)
        for module in self.modules():
            if type(module) is nn.Linear:
                nn.init.xavier_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.embedding.weight, std=self.EMBEDDING_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, F] -> [B]
        e = self.embedding(x).flatten(1)
        return self.fc(torch.cat([self.cross_net(e), self.dnn(e)], dim=1)).squeeze(-1)


def _fuxictr(cls: str) -> Callable[[Schema, dict], nn.Module]:
    def make(schema: Schema, arch: dict) -> nn.Module:
        width = schema.num_fields * arch["embed_dim"]
        blocks = _fuxictr_module("pytorch/layers/interactions/cross_net.py")
        if cls == "CrossNetV2":
            cross_net = blocks.CrossNetV2(width, arch["num_layers"])
        else:
            cross_net = blocks.CrossNetMix(width, arch["num_layers"], arch["rank"], arch["num_experts"])
        return FuxiDCN(schema, arch, cross_net)

    return make


# ---- the table --------------------------------------------------------------------------------

def _pnn(method: str) -> Hparams:
    return lambda arch: {**_mlp(arch), "method": method}


def _nfm(arch: dict) -> dict:  # dropout after the bi-interaction pooling and in the DNN
    return {"embed_dim": arch["embed_dim"], "mlp_dims": arch["hidden_units"], "dropouts": (arch["dropout"],) * 2}


def _cross(arch: dict) -> dict:
    return {"cross_num": arch["num_layers"]}


def _mixture(arch: dict) -> dict:
    return {"cross_num": arch["num_layers"], "low_rank": arch["rank"], "num_experts": arch["num_experts"]}


PEERS: tuple[Peer, ...] = (
    Peer("fm", "pytorch-fm", "FactorizationMachineModel", _torchfm("fm", "FactorizationMachineModel", _embed),
         local_indices),
    Peer("ffm", "pytorch-fm", "FieldAwareFactorizationMachineModel",
         _torchfm("ffm", "FieldAwareFactorizationMachineModel", _embed), local_indices),
    Peer("pnn_inner", "pytorch-fm", "ProductNeuralNetworkModel(method='inner')",
         _torchfm("pnn", "ProductNeuralNetworkModel", _pnn("inner")), local_indices),
    Peer("pnn_inner", "DeepCTR-Torch", "PNN(use_inner=True)", _deepctr("PNN", use_inner=True),
         _float_local_indices, own_fit=_deepctr_fit),
    Peer("pnn_outer", "pytorch-fm", "ProductNeuralNetworkModel(method='outer')",
         _torchfm("pnn", "ProductNeuralNetworkModel", _pnn("outer")), local_indices),
    Peer("pnn_outer", "DeepCTR-Torch", "PNN(use_outter=True, kernel_type='mat')",
         _deepctr("PNN", use_inner=False, use_outter=True, kernel_type="mat"), _float_local_indices,
         own_fit=_deepctr_fit),
    Peer("deepfm", "pytorch-fm", "DeepFactorizationMachineModel",
         _torchfm("dfm", "DeepFactorizationMachineModel", _mlp), local_indices),
    Peer("deepfm", "DeepCTR-Torch", "DeepFM", _deepctr("DeepFM", dnn_use_bn=True), _float_local_indices,
         own_fit=_deepctr_fit),
    Peer("nfm", "pytorch-fm", "NeuralFactorizationMachineModel",
         _torchfm("nfm", "NeuralFactorizationMachineModel", _nfm), local_indices),
    Peer("nfm", "DeepCTR-Torch", "NFM", _deepctr("NFM"), _float_local_indices, own_fit=_deepctr_fit),
    Peer("dcn_v2", "FuxiCTR", "DCN from CrossNetV2 + MLP_Block", _fuxictr("CrossNetV2"), _global_indices,
         probabilities=False),
    Peer("dcn_v2", "DeepCTR-Torch", "DCN(cross_parameterization='matrix')",
         _deepctr("DCN", _cross, cross_parameterization="matrix", dnn_use_bn=True), _float_local_indices,
         own_fit=_deepctr_fit),
    Peer("dcn_mix", "FuxiCTR", "DCN from CrossNetMix + MLP_Block", _fuxictr("CrossNetMix"), _global_indices,
         probabilities=False),
    Peer("dcn_mix", "DeepCTR-Torch", "DCNMix", _deepctr("DCNMix", _mixture, dnn_use_bn=True), _float_local_indices,
         own_fit=_deepctr_fit),
)


# DeepCTR-Torch's models of the zoo families (issue #14); used once those names are registered.
ZOO_PEERS: tuple[Peer, ...] = (
    Peer("wide_deep", "DeepCTR-Torch", "WDL", _deepctr("WDL", dnn_use_bn=True), _float_local_indices,
         own_fit=_deepctr_fit),
    Peer("dcn_v1", "DeepCTR-Torch", "DCN(cross_parameterization='vector')",
         _deepctr("DCN", _cross, cross_parameterization="vector", dnn_use_bn=True), _float_local_indices,
         own_fit=_deepctr_fit),
    Peer("xdeepfm", "DeepCTR-Torch", "xDeepFM", _deepctr("xDeepFM", dnn_use_bn=True), _float_local_indices,
         own_fit=_deepctr_fit),
    Peer("autoint", "DeepCTR-Torch", "AutoInt", _deepctr("AutoInt", dnn_use_bn=True), _float_local_indices,
         own_fit=_deepctr_fit),
    Peer("fibinet", "DeepCTR-Torch", "FiBiNET", _deepctr("FiBiNET"), _float_local_indices,
         own_fit=_deepctr_fit),
)


def peers_for(case: str, available: dict[str, str | None] | None = None) -> list[Peer]:
    """The peers of ``case`` whose library is installed (``available``: from :func:`installed`)."""
    available = installed() if available is None else available
    return [p for p in (*PEERS, *ZOO_PEERS) if p.case == case and available.get(p.library)]
