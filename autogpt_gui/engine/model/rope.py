"""Rotary position embeddings (Su et al. 2021), with Llama 3.1's long-context frequencies.

Computed as transformers' `modeling_llama.py` does (its `rotate_half` layout, which its weights are stored for),
so imported weights need no permutation; the tables are made per forward from the positions, so they follow the
model's device and leave no buffer in the state dict.
"""
from __future__ import annotations

import math

import torch


def inverse_frequencies(cfg, device: torch.device | None = None) -> torch.Tensor:
    """theta^(-2i/d) for the head width d; Llama 3's scaling stretches the low frequencies by `rope_factor`."""
    dim = cfg.head_dim or cfg.n_embd // cfg.n_head
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64, device=device).float() / dim))
    if cfg.rope_scaling != "llama3":
        return inv
    old = cfg.rope_original_max_position_embeddings
    low, high, factor = cfg.rope_low_freq_factor, cfg.rope_high_freq_factor, cfg.rope_factor
    wavelen = 2 * math.pi / inv
    # long wavelengths are divided by the factor, short ones kept, the band between interpolated smoothly
    scaled = torch.where(wavelen > old / low, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old / high) * ~(wavelen > old / low)
    return torch.where(medium, smoothed, scaled)


def rope_tables(cfg, start: int, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, (length, head width) in float32, for positions start .. start + length - 1."""
    positions = torch.arange(start, start + length, device=device, dtype=torch.float32)
    freqs = torch.outer(positions, inverse_frequencies(cfg, device))
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, heads, T, d) by the tables: each half-pair (x_i, x_{i+d/2}) turns by its position's angle."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)
