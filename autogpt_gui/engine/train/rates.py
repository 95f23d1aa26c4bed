"""Learning rates: one factor per step, times each parameter group's own base rate.

The factor is the schedule's value over the rate the schedule is built for (optim.lr), times the rollback
scale; a group trains at `group["base_lr"] * factor`. Groups with different base rates (AdamW's and
Muon's) so keep their ratio through schedules, live edits and rollbacks.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def keep_base_rates(optimizer: torch.optim.Optimizer) -> None:
    """Record each group's base rate (its lr as the optimizer was built), unless it has one."""
    for group in optimizer.param_groups:
        group.setdefault("base_lr", group["lr"])


def base_rates(optimizer: torch.optim.Optimizer) -> list[float]:
    """Each group's base rate, in order."""
    return [float(group["base_lr"]) for group in optimizer.param_groups]


def set_base_rates(optimizer: torch.optim.Optimizer, rates: list[float]) -> None:
    """Put back base rates read by base_rates() (a restored optimizer state must not bring its own)."""
    for group, rate in zip(optimizer.param_groups, rates):
        group["base_lr"] = rate


def reference_rate(schedule: Callable[[int], float] | None, optimizer: torch.optim.Optimizer) -> float:
    """The rate a schedule is built for: its `lr` (optim.lr), or the first group's base rate for a plain
    callable (or no schedule)."""
    lr = getattr(schedule, "lr", None)
    return float(lr) if lr is not None else float(optimizer.param_groups[0]["base_lr"])


def lr_factor(schedule: Callable[[int], float], step: int, lr_scale: float, optimizer: torch.optim.Optimizer) -> float:
    """The factor of `step`: schedule(step) over the rate it is built for, times lr_scale."""
    reference = reference_rate(schedule, optimizer)
    return schedule(step) / reference * lr_scale if reference else 0.0


def apply_factor(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Every group trains at its base rate times factor."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


def scale_base_rates(optimizer: torch.optim.Optimizer, ratio: float) -> None:
    """Multiply every group's base rate by ratio (a live edit of optim.lr moves them all in proportion)."""
    for group in optimizer.param_groups:
        group["base_lr"] *= ratio
