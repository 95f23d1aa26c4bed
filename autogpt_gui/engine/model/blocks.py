"""A transformer block of either kind: pre-norm attention then pre-norm MLP, each added to the residual.

"gpt2": LayerNorm and a GELU MLP four times as wide. "llama": RMSNorm and a SwiGLU MLP
(Shazeer 2020: down(silu(gate(x)) * up(x))) of `intermediate_size`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F

from autogpt_gui.engine.model.attention import CausalSelfAttention, KVCache
from autogpt_gui.engine.model.lora import make_linear
from autogpt_gui.engine.model.norm import RMSNorm
from autogpt_gui.estimates import mlp_width


def make_norm(cfg) -> nn.Module:
    """The kind's normalisation over the width: LayerNorm for gpt2, RMSNorm for llama."""
    if cfg.arch == "llama":
        return RMSNorm(cfg.n_embd, eps=cfg.rms_norm_eps)
    return nn.LayerNorm(cfg.n_embd, eps=cfg.ln_eps, bias=cfg.bias)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = make_linear(cfg, "mlp.c_fc", cfg.n_embd, 4 * cfg.n_embd)
        self.gelu = nn.GELU(approximate="tanh" if cfg.activation == "gelu_tanh" else "none")
        self.c_proj = make_linear(cfg, "mlp.c_proj", 4 * cfg.n_embd, cfg.n_embd)
        self.c_proj.residual_scale = True  # type: ignore[assignment]  # a marker read by _init_weights
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class SwiGLU(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        width = mlp_width(cfg)
        self.gate_proj = make_linear(cfg, "mlp.gate_proj", cfg.n_embd, width)
        self.up_proj = make_linear(cfg, "mlp.up_proj", cfg.n_embd, width)
        self.down_proj = make_linear(cfg, "mlp.down_proj", width, cfg.n_embd)
        self.down_proj.residual_scale = True  # type: ignore[assignment]  # a marker read by _init_weights
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = make_norm(cfg)
        self.mlp = SwiGLU(cfg) if cfg.arch == "llama" else MLP(cfg)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope, cache, layer)
        return x + self.mlp(self.ln_2(x))
