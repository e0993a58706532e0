"""AutoInt (Song et al., CIKM 2019): stacked multi-head self-attention over the fields; AutoInt+ adds a DNN."""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .layers import FeatureEmbedding, Input, MLPLogit, xavier_linear
from .layers_attention import FieldSelfAttention


class AutoInt(nn.Module):
    """``logit = w^T flatten(Att_L(...Att_1(E))) + b [+ w'^T MLP(e) + b']`` (the bracket with ``use_dnn``, AutoInt+).

    The paper has three interacting layers of two heads of width 32; here one layer of two heads of
    width 16 (EasyRec's default depth; each further layer adds 70% to a training step at batch 2048)
    keeps ``--all`` inside its time, and AutoInt+'s DNN is the study's tower instead of the paper's.
    ``num_layers=3, head_dim=32`` is the paper's configuration.
    """

    def __init__(
        self,
        schema,
        embed_dim: int = 16,
        num_layers: int = 1,
        num_heads: int = 2,
        head_dim: int = 16,
        use_dnn: bool = True,
        hidden_units=(128, 64, 32),
        dropout: float = 0.1,
        batch_norm: bool = True,
    ):
        super().__init__()
        embed_dim = checks.positive_int("embed_dim", embed_dim)
        num_layers = checks.positive_int("num_layers", num_layers)
        self.embedding = FeatureEmbedding(schema.num_features, embed_dim)
        widths = [embed_dim] + [num_heads * head_dim] * num_layers
        self.attention = nn.Sequential(*(FieldSelfAttention(w, head_dim, num_heads) for w in widths[:-1]))
        self.attention_output = xavier_linear(schema.num_fields * widths[-1], 1)
        use_dnn = checks.boolean("use_dnn", use_dnn)
        self.deep = MLPLogit(schema.num_fields * embed_dim, hidden_units, dropout, batch_norm) if use_dnn else None

    def forward(self, x: Input) -> torch.Tensor:  # [B, F] -> [B]
        e = self.embedding(x)  # [B, F, d]
        logit = self.attention_output(self.attention(e).flatten(1)).squeeze(-1)  # [B, F H d'] -> [B]
        return logit if self.deep is None else logit + self.deep(e.flatten(1))
