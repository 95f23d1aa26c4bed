"""Shared pieces of the benchmarks: the two model configs, token data, matmul peaks, timing."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from autogpt_gui.config import DataConfig
from autogpt_gui.engine.data.sources import ShakespeareSource, prepare_tokens
from autogpt_gui.engine.model.gpt import GPTConfig

# (label, model shape, batch size, steps per measurement)
CONFIGS = [
    ("128-wide (4L/4H, ctx 64, batch 12)", dict(n_layer=4, n_head=4, n_embd=128, block_size=64), 12, 60),
    ("384-wide (6L/6H, ctx 256, batch 16)", dict(n_layer=6, n_head=6, n_embd=384, block_size=256), 16, 6),
]
# --smoke: the smallest shape that still runs every code path (the test suite runs each benchmark so)
SMOKE_CONFIGS = [("smoke (1L/2H, ctx 32, batch 4)", dict(n_layer=1, n_head=2, n_embd=32, block_size=32), 4, 5)]
SMOKE_HELP = "the smallest size, in seconds (the test suite runs it): figures are printed, targets are not judged"


def token_data(cache_root: Path):
    """Character-level Tiny Shakespeare, the built-in copy."""
    return prepare_tokens(ShakespeareSource(), DataConfig(source="shakespeare", tokenizer="char"), cache_root)


def gpt_config(shape: dict, vocab_size: int) -> GPTConfig:
    return GPTConfig(vocab_size=vocab_size, dropout=0.0, bias=True, **shape)


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 1.0) -> float:
    """Measured FLOP/s of a square matmul in dtype on this CPU."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - t0)


def per_step_seconds(stamps: list[float], warmup: int = 2) -> float:
    """Median time between consecutive steps after the warm-up steps."""
    gaps = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :])]
    return statistics.median(gaps)
