"""One optimizer step of the Trainer: its micro-batches (forward, backward), then the checks and the update.

Part of the training loop itself (with trainer.py, requests.py and addons.py): these functions keep the
Trainer's private step state (`_micro`, `_micro_losses`); add-ons reach it only through the public
methods of engine/train/addons.py (redo_step, before_update, on_step_error).
"""
from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING

import torch

from autogpt_gui.engine.train.events import StepMetrics
from autogpt_gui.engine.train.precision import autocast_for
from autogpt_gui.errors import TrainingError

if TYPE_CHECKING:
    from autogpt_gui.engine.train.trainer import Trainer


def micro_step(trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Forward and backward of one micro-batch; the step's first one sets this step's learning rates."""
    if x.device != trainer.device:
        x, y = x.to(trainer.device, non_blocking=True), y.to(trainer.device, non_blocking=True)
    if trainer._micro == 0:
        trainer.refresh_lr()
    forward = trainer._forward
    # several ranks (DistributedDataParallel): average gradients only on the step's last micro-batch
    local = trainer._micro < trainer.config.grad_accum - 1 and hasattr(forward, "no_sync")
    with forward.no_sync() if local else contextlib.nullcontext():
        with autocast_for(trainer.precision or "fp32", trainer.device):
            _, loss = trainer._loss(forward, x, y)
        scaled = loss / trainer.config.grad_accum
        (trainer.scaler.scale(scaled) if trainer.scaler else scaled).backward()
    return loss.detach()


def restart(trainer: Trainer) -> None:
    """Forget the step in progress: its gradients and its micro-batches' losses."""
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer._micro = 0
    trainer._micro_losses = []


def optimizer_step(trainer: Trainer, step_tokens: int, t_last: float) -> StepMetrics | None:
    """The update after the step's last micro-batch, or None when a check before the update skipped it."""
    loss = float(sum(trainer._micro_losses) / len(trainer._micro_losses))
    if trainer.ranks is not None:  # several ranks: their mean loss, their edits (engine/train/distributed.py)
        loss = trainer.ranks.reduce(trainer, loss)
    grad_norm = None
    if trainer.grad_clip and trainer.grad_clip > 0:
        if trainer.scaler:
            trainer.scaler.unscale_(trainer.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.grad_clip)
    norm = None if grad_norm is None else float(grad_norm)
    if any(check(trainer, loss, norm) for check in trainer.step_checks):
        restart(trainer)  # the update never happens: the weights stay good
        return None
    if not math.isfinite(loss):  # before the update, so the weights in memory stay finite too
        raise TrainingError(
            f"the loss became {loss} at step {trainer.step + 1}; training stopped and the last good checkpoint "
            "is kept. Lower the learning rate, enable gradient clipping, or use fp32", "optim.lr")
    if trainer.scaler:
        trainer.scaler.step(trainer.optimizer)
        trainer.scaler.update()
    else:
        trainer.optimizer.step()
    restart(trainer)
    trainer.step += 1
    tokens = step_tokens * trainer.world
    trainer.tokens_seen += tokens
    now = time.perf_counter()
    trainer.elapsed = now - trainer._t0
    return StepMetrics(trainer.step, trainer.epoch, loss, trainer.optimizer.param_groups[0]["lr"],
                       norm, tokens / max(now - t_last, 1e-9),
                       trainer.elapsed, trainer.tokens_seen, trainer.max_steps)

