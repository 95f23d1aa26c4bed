"""Learning-rate schedules: values of the step, so a resumed run needs no scheduler state.

A schedule is a frozen dataclass (callable as lr(step)), so a live edit or an extension replaces a field
and the rest of the curve follows: `replace(schedule, lr=5e-4)` moves the peak, and `extended(...)`
decays from the current rate over new steps instead of jumping back up.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from autogpt_gui.settings import choices_of

Schedule = Callable[[int], float]
NAMES = choices_of("optim.schedule")


@dataclass(frozen=True)
class LRSchedule:
    """Linear warmup, then the named decay to min_lr by the last step (total_steps - 1).

    'wsd' is warmup-stable-decay (Hu et al. 2024, MiniCPM): flat at lr, then a linear decay over the
    last `decay_fraction` of the run. From `tail_from` on (an extended run) the curve restarts its
    decay from `tail_lr`, the rate the run had reached, instead of following the original shape.
    """

    name: str
    lr: float
    min_lr: float
    warmup_steps: int
    total_steps: int
    decay_fraction: float = 0.2
    tail_from: int = -1
    tail_lr: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in NAMES:
            raise ValueError(f"unknown schedule '{self.name}'; choose constant, linear, cosine or wsd")

    def __call__(self, step: int) -> float:
        total = max(1, self.total_steps)
        if 0 <= self.tail_from <= step:
            start = self.tail_from
            if self.name == "wsd":  # hold the rate, then decay over the last share of the new steps
                start += int((total - self.tail_from) * (1.0 - self.decay_fraction))
            return self._decay(self.tail_lr, step, start)
        warm = max(0, min(self.warmup_steps, total - 1))
        if step < warm:
            return self.lr * (step + 1) / (warm + 1)
        if self.name == "wsd":
            return self._decay(self.lr, step, max(warm, int(total * (1.0 - self.decay_fraction))))
        return self._decay(self.lr, step, warm)

    def _decay(self, top: float, step: int, start: int) -> float:
        """From `top` at `start` to min_lr at the last step, in this schedule's shape."""
        if self.name == "constant" or step < start:
            return top
        t = min(1.0, (step - start) / max(1, self.total_steps - 1 - start))
        if self.name == "cosine":
            return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * t)) * (top - self.min_lr)
        return top + t * (self.min_lr - top)


def make_schedule(name: str, lr: float, min_lr: float, warmup_steps: int, total_steps: int,
                  decay_fraction: float = 0.2) -> LRSchedule:
    """lr(step) for step 0..total_steps-1: linear warmup, then the named decay to min_lr."""
    return LRSchedule(name, lr, min_lr, warmup_steps, total_steps, decay_fraction)


def extended(schedule: LRSchedule, step: int, total_steps: int) -> LRSchedule:
    """The schedule of a run continued from `step` to `total_steps`: it decays from the rate reached at
    `step` (cosine to min_lr at the new end; WSD holds it, then decays) with no jump back up."""
    return replace(schedule, total_steps=total_steps, tail_from=step, tail_lr=schedule(step))
