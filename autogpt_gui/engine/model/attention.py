"""Causal self-attention for both block kinds, and the key/value cache that generation fills.

GPT-2's kind projects q, k, v with one fused layer; the llama kind with three (q_proj, k_proj, v_proj: so
LoRA can target each), fewer key/value heads than query heads (grouped-query attention, which
scaled_dot_product_attention's `enable_gqa` serves without repeating keys), optional q/k RMSNorm (Qwen3) and
rotary positions. A Mistral-style sliding window becomes a banded causal mask.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F

from autogpt_gui.engine.model.lora import make_linear
from autogpt_gui.engine.model.norm import RMSNorm
from autogpt_gui.engine.model.rope import apply_rope
from autogpt_gui.estimates import head_size, kv_heads


class KVCache:
    """Preallocated keys and values for every layer, filled left to right; `length` tokens at most (the context)."""

    def __init__(self, cfg, batch: int, device, dtype, length: int | None = None):
        shape = (batch, kv_heads(cfg), min(cfg.block_size, length or cfg.block_size), head_size(cfg))
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.length = 0


def attention_mask(start: int, length: int, window: int, device: torch.device) -> torch.Tensor | None:
    """Which keys each new query sees (True: seen), or None where is_causal says it (no window, nothing cached)."""
    total = start + length
    if start == 0 and not (window and window < total):
        return None
    q = torch.arange(start, total, device=device)[:, None]
    k = torch.arange(total, device=device)[None, :]
    seen = k <= q
    return seen & (q - k < window) if window else seen


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, kv_heads(cfg), head_size(cfg)
        self.llama = cfg.arch == "llama"
        self.window = cfg.sliding_window
        C, q_width, kv_width = cfg.n_embd, self.n_head * self.head_dim, self.n_kv_head * self.head_dim
        if self.llama:
            qkv_bias = cfg.attention_bias or cfg.qkv_bias
            self.q_proj = make_linear(cfg, "attn.q_proj", C, q_width, qkv_bias)
            self.k_proj = make_linear(cfg, "attn.k_proj", C, kv_width, qkv_bias)
            self.v_proj = make_linear(cfg, "attn.v_proj", C, kv_width, qkv_bias)
            self.o_proj = make_linear(cfg, "attn.o_proj", q_width, C, cfg.attention_bias)
            self.o_proj.residual_scale = True  # type: ignore[assignment]  # a marker read by _init_weights
            if cfg.qk_norm:
                self.q_norm = RMSNorm(self.head_dim, eps=cfg.rms_norm_eps)
                self.k_norm = RMSNorm(self.head_dim, eps=cfg.rms_norm_eps)
        else:
            self.c_attn = make_linear(cfg, "attn.c_attn", C, 3 * C)
            self.c_proj = make_linear(cfg, "attn.c_proj", C, C)
            self.c_proj.residual_scale = True  # type: ignore[assignment]  # a marker read by _init_weights
        self.qk_norm = self.llama and cfg.qk_norm
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.dropout = cfg.dropout

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q (B, nh, T, hd) and k, v (B, n_kv, T, hd)."""
        B, T, _ = x.shape
        if not self.llama:
            q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
            return q, k, v
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_dim)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_dim)
        if self.qk_norm:  # Qwen3: per head, before the rotation
            q, k = self.q_norm(q), self.k_norm(k)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self._project(x)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        start = cache.length if cache is not None else 0
        if cache is not None:
            cache.k[layer][:B, :, start : start + T] = k
            cache.v[layer][:B, :, start : start + T] = v
            k, v = cache.k[layer][:B, :, : start + T], cache.v[layer][:B, :, : start + T]
        mask = attention_mask(start, T, self.window, x.device)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None and T > 1,
            dropout_p=self.dropout if self.training else 0.0, enable_gqa=self.n_kv_head != self.n_head,
        )
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim)
        return self.resid_dropout(self.o_proj(y) if self.llama else self.c_proj(y))
