"""The learning-rate finder (Smith 2017, fastai's lr_find): an exponential sweep on a fresh copy of the model.

The learning rate grows from `start` to `end` over `steps` optimizer steps while the loss is recorded,
smoothed (a bias-corrected moving average over about a tenth of the sweep: a longer one lags and moves
the minimum to larger rates), and the sweep ends early once it has blown up (4x its best). The
suggestion is a fraction of the rate at the smoothed minimum: still on the steep part of the descent,
safely below where training becomes unstable. fastai takes a tenth; a fifth matched the best of
300-step runs at 3e-4, 1e-3 and 3e-3 on our presets (tests/test_run_control.py measures it), so the app
suggests a fifth. Nothing of a run is touched: the sweep builds its own model, optimizer and data position.
With optim.name "muon" the sweep moves both rates in their configured ratio (muon_lr / lr): the swept
rate is optim.lr's, and Muon's suggestion is the same multiple of it.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from autogpt_gui.config import RunConfig

FRACTION = 5  # the suggestion is the rate at the smoothed minimum divided by this


@dataclass
class LRSweep:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggestion: float | None = None
    muon_ratio: float | None = None  # muon_lr / lr, the ratio the sweep kept (optim.name "muon" only)

    @property
    def muon_suggestion(self) -> float | None:
        """The Muon rate that goes with the suggestion (same ratio as swept); None without Muon."""
        if self.suggestion is None or self.muon_ratio is None:
            return None
        return self.suggestion * self.muon_ratio

    def describe(self) -> str:
        if self.suggestion is None:
            return "the loss never fell during the sweep: check the data, or lower the start of the range"
        best = min(range(len(self.smoothed)), key=self.smoothed.__getitem__)
        muon = "" if self.muon_suggestion is None else \
            f", with Muon learning rate {self.muon_suggestion:.2e} (the same ratio as configured)"
        return (f"lowest smoothed loss {self.smoothed[best]:.3f} at learning rate {self.lrs[best]:.2e}; "
                f"suggested learning rate {self.suggestion:.2e} (a fifth of that){muon}")


def find_lr(cfg: RunConfig, start: float = 1e-6, end: float = 1.0, steps: int = 100,
            progress: Callable[[int, float, float], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> LRSweep:
    """Sweep the learning rate for cfg's model and data; progress(i, lr, loss) after each step."""
    from autogpt_gui.engine.session import build_session
    from autogpt_gui.engine.train import rates
    from autogpt_gui.engine.train.precision import autocast_for

    session = build_session(cfg)  # no run folder: its own model and optimizer, from the configuration
    trainer, model, optimizer = session.trainer, session.model, session.optimizer
    trainer.prepare()
    model.train()
    sweep, avg, best = LRSweep(), 0.0, math.inf
    if cfg.optim.name == "muon":
        sweep.muon_ratio = cfg.optim.muon_lr / cfg.optim.lr
    beta = 1.0 - 10.0 / max(steps, 20)  # a window of about a tenth of the sweep
    batches = iter(trainer.train_loader)
    for i in range(steps):
        lr = start * (end / start) ** (i / max(1, steps - 1))
        rates.apply_factor(optimizer, lr / cfg.optim.lr)  # every group (AdamW's, Muon's) in proportion to its base
        total = 0.0
        for _ in range(cfg.train.grad_accum):
            try:
                x, y = next(batches)
            except StopIteration:  # a small data set: start another pass
                batches = iter(trainer.train_loader)
                x, y = next(batches)
            with autocast_for(trainer.precision or "fp32", trainer.device):
                _, loss = model(x.to(trainer.device), y.to(trainer.device))
            (loss / cfg.train.grad_accum).backward()
            total += float(loss.detach()) / cfg.train.grad_accum
        if cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if not math.isfinite(total):
            break
        avg = beta * avg + (1 - beta) * total
        smooth = avg / (1 - beta ** (i + 1))
        sweep.lrs.append(lr)
        sweep.losses.append(total)
        sweep.smoothed.append(smooth)
        if progress is not None:
            progress(i, lr, smooth)
        best = min(best, smooth)
        if (i > steps // 10 and smooth > 4 * best) or (cancelled is not None and cancelled()):
            break
    sweep.suggestion = suggest(sweep.lrs, sweep.smoothed)
    return sweep


def suggest(lrs: list[float], smoothed: list[float]) -> float | None:
    """A fifth of the learning rate at the smoothed loss's minimum; None when the loss never fell."""
    if len(smoothed) < 5:
        return None
    skip = max(1, len(smoothed) // 10)  # the moving average's first points say little
    i = min(range(skip, len(smoothed)), key=smoothed.__getitem__)
    if smoothed[i] >= smoothed[skip - 1]:
        return None
    return lrs[i] / FRACTION
