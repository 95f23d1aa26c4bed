"""Learning-rate schedules: functions of the step, so a resumed run needs no scheduler state."""
from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[int], float]


def make_schedule(name: str, lr: float, min_lr: float, warmup_steps: int, total_steps: int,
                  decay_fraction: float = 0.2) -> Schedule:
    """lr(step) for step 0..total_steps-1: linear warmup, then the named decay to min_lr.

    'wsd' is warmup-stable-decay (Hu et al. 2024, MiniCPM): flat at lr, then a linear decay
    over the last `decay_fraction` of the run.
    """
    total = max(1, total_steps)
    warm = max(0, min(warmup_steps, total - 1))

    def warmup(step: int) -> float | None:
        return lr * (step + 1) / (warm + 1) if step < warm else None

    if name == "constant":
        return lambda step: warmup(step) or lr
    if name == "linear":
        def linear(step: int) -> float:
            w = warmup(step)
            if w is not None:
                return w
            t = min(1.0, (step - warm) / max(1, total - 1 - warm))
            return lr + t * (min_lr - lr)
        return linear
    if name == "cosine":
        def cosine(step: int) -> float:
            w = warmup(step)
            if w is not None:
                return w
            t = min(1.0, (step - warm) / max(1, total - 1 - warm))
            return min_lr + 0.5 * (1.0 + math.cos(math.pi * t)) * (lr - min_lr)
        return cosine
    if name == "wsd":
        decay_start = max(warm, int(total * (1.0 - decay_fraction)))

        def wsd(step: int) -> float:
            w = warmup(step)
            if w is not None:
                return w
            if step < decay_start:
                return lr
            t = min(1.0, (step - decay_start) / max(1, total - 1 - decay_start))
            return lr + t * (min_lr - lr)
        return wsd
    raise ValueError(f"unknown schedule '{name}'; choose constant, linear, cosine or wsd")
