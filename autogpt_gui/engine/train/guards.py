"""Guards that watch a run and step in: early stop, and rollback of a diverging step.

Both are trainer extensions (`trainer.add(name, guard)`): they subscribe to the loop's events or checks,
announce what they do as Markers, and keep their state in checkpoints so a resumed run decides the same.
"""
from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable

from autogpt_gui.engine.train.precision import is_out_of_memory
from autogpt_gui.errors import TrainingError


class EarlyStop:
    """End the run as finished when `patience` evaluations in a row fail to beat the best validation loss
    by `min_delta`; the best checkpoint (saved when it was reached) is kept."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best = math.inf
        self.stale = 0  # evaluations since the last improvement

    def attach(self, trainer) -> None:
        trainer.on("eval", lambda m: self._evaluated(trainer, m.val_loss))

    def _evaluated(self, trainer, val_loss: float) -> None:
        if val_loss < self.best - self.min_delta:
            self.best, self.stale = val_loss, 0
            return
        self.stale += 1
        if self.stale >= self.patience and trainer.state == "running":
            margin = f" by more than {self.min_delta:g}" if self.min_delta else ""
            reason = (f"early stop: validation loss has not improved on {self.best:.4f}{margin} for {self.stale} "
                      "evaluations")
            trainer.marker("early_stop", f"{reason} (step {trainer.step})", {"best_val_loss": self.best})
            trainer.request("finish", reason)

    def state_dict(self) -> dict:
        return {"best": self.best, "stale": self.stale}

    def load_state_dict(self, trainer, saved: dict) -> None:
        self.best, self.stale = float(saved["best"]), int(saved["stale"])


class DivergenceGuard:
    """Roll back a step whose loss is not finite, or above `factor` times the running median of the last
    steps (and at least one nat above it), before its update touches the weights.

    The state before that step is the last good one (nothing diverged is ever applied, so nothing has to
    be copied back from disk); the batch is skipped, the learning rate is multiplied by `lr_factor`, and
    training goes on from the same step. `limit` rollbacks within `window` steps stop the run.
    """

    def __init__(self, factor: float = 3.0, lr_factor: float = 0.5, limit: int = 3, window: int = 100,
                 history: int = 50, warmup: int = 10):
        self.factor, self.lr_factor, self.limit, self.window, self.warmup = factor, lr_factor, limit, window, warmup
        self.losses: deque[float] = deque(maxlen=history)
        self.rollbacks: list[int] = []  # the steps rolled back recently

    def attach(self, trainer) -> None:
        trainer.before_update(self.check)

    def check(self, trainer, loss: float, grad_norm: float | None) -> str | None:
        """Why this update must not happen, or None (and the loss joins the running median)."""
        step = trainer.step + 1
        why = None
        if not math.isfinite(loss):
            why = f"the loss became {loss}"
        elif grad_norm is not None and not math.isfinite(grad_norm):
            why = f"the gradient norm became {grad_norm}"
        elif self.factor and len(self.losses) >= self.warmup:
            median = statistics.median(self.losses)
            if loss > self.factor * median and loss > median + 1.0:
                why = f"the loss jumped to {loss:.3f}, {loss / median:.1f}x its running median {median:.3f}"
        if why is None:
            self.losses.append(loss)
            return None
        self.rollbacks = [s for s in self.rollbacks if s > step - self.window] + [step]
        if len(self.rollbacks) >= self.limit:
            raise TrainingError(f"{why} at step {step}: {len(self.rollbacks)} rollbacks within {self.window} steps, "
                                "so training stopped and the last good checkpoint is kept. Lower the learning "
                                "rate, enable gradient clipping, or use fp32", "optim.lr")
        before = trainer.lr_scale
        trainer.lr_scale *= self.lr_factor
        trainer.marker("rollback", f"rolled back step {step}: {why}; its batch is skipped and the learning rate "
                                   f"scaled by {self.lr_factor:g} (now x{trainer.lr_scale:g})",
                       {"loss": loss, "lr_scale": [before, trainer.lr_scale]})
        return why

    def state_dict(self) -> dict:
        return {"losses": list(self.losses), "rollbacks": list(self.rollbacks)}

    def load_state_dict(self, trainer, saved: dict) -> None:
        self.losses.clear()
        self.losses.extend(float(x) for x in saved["losses"])
        self.rollbacks = [int(s) for s in saved["rollbacks"]]


class HalveOnOOM:
    """Out of memory in the middle of a step: halve the micro-batch and double the accumulation (the same
    effective batch, so the same optimization), and redo the step from its first micro-batch on the same
    data, split in halves. The run goes on from the same step; a micro-batch of one that still does not
    fit ends the run with the usual message (the last checkpoint is kept)."""

    def __init__(self, ask: Callable[[dict], bool] | None = None):
        self.batch_size: int | None = None  # what the run trains with since halving
        self.grad_accum: int | None = None
        self.ask = ask  # fn({step, batch_size: [old, new], grad_accum: [old, new]}) -> halve?; None: always

    def attach(self, trainer) -> None:
        trainer.on_step_error(self.handle)

    def handle(self, trainer, err: BaseException, batches: list) -> bool:
        import torch

        while is_out_of_memory(err):
            size = int(getattr(trainer.train_loader, "batch_size", 0) or batches[-1][0].shape[0])
            if size < 2:
                return False
            accum = trainer.config.grad_accum
            if self.ask is not None and not self.ask({"step": trainer.step + 1, "batch_size": [size, size // 2],
                                                      "grad_accum": [accum, accum * 2]}):
                return False
            trainer.optimizer.zero_grad(set_to_none=True)  # this step's gradients go before the cache is emptied
            if trainer.device.type == "cuda":
                torch.cuda.empty_cache()
            self._apply(trainer, size // 2, trainer.config.grad_accum * 2)
            trainer.marker("oom", f"out of memory at step {trainer.step + 1}: micro-batch halved to {size // 2} "
                                  f"with accumulation {trainer.config.grad_accum} (same effective batch); the step "
                                  "starts again", {"batch_size": [size, size // 2],
                                                   "grad_accum": [trainer.config.grad_accum // 2,
                                                                  trainer.config.grad_accum]})
            try:
                trainer.redo_step(_halves(batches, size // 2))
                return True
            except Exception as again:  # noqa: BLE001 - still too big: halve again, or give up below
                err = again
        return False

    def _apply(self, trainer, batch_size: int, grad_accum: int) -> None:
        from dataclasses import replace

        self.batch_size, self.grad_accum = batch_size, grad_accum
        trainer.config = replace(trainer.config, batch_size=batch_size, grad_accum=grad_accum)
        if hasattr(trainer.train_loader, "set_batch_size"):
            trainer.train_loader.set_batch_size(batch_size)

    def state_dict(self) -> dict:
        return {"batch_size": self.batch_size, "grad_accum": self.grad_accum} if self.batch_size else {}

    def load_state_dict(self, trainer, saved: dict) -> None:
        if saved.get("batch_size"):  # a resumed run keeps the micro-batch that fitted
            self._apply(trainer, int(saved["batch_size"]), int(saved["grad_accum"]))


def _halves(batches: list, size: int):
    """The step's (x, y) batches again, split into micro-batches of `size`."""
    for x, y in batches:
        yield from zip(x.split(size), y.split(size))
