"""The training loop: forward, backward, step, and announce what happened.

Listeners (the terminal progress bar, the metrics file, the Qt worker) subscribe with
`trainer.on(event, fn)`; the loop never knows who listens. Requests from other threads
(pause, resume, stop, save, evaluate, sample, call) are honoured between steps.

The loop's own modules: this one (epochs, evaluation, checkpoints), steps.py (one step's micro-batches
and update), requests.py (the run's state machine) and addons.py (AddonHost: what add-ons may use).
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import fields, replace

import torch

from autogpt_gui import length
from autogpt_gui.config import TrainConfig
from autogpt_gui.engine.train import rates, snapshot, steps
from autogpt_gui.engine.train.addons import Addon, AddonHost, Checkpoints, ErrorHandler, RankReducer, StepCheck
from autogpt_gui.engine.train.events import (
    CheckpointSaved,
    EvalMetrics,
    Finished,
    RunState,
    SampleText,
    StepMetrics,
)
from autogpt_gui.engine.train.precision import autocast_for, is_out_of_memory, pick_device, resolve_precision
from autogpt_gui.engine.train.requests import RunRequests
from autogpt_gui.engine.train.schedules import Schedule
from autogpt_gui.errors import TrainingError

EVENTS = ("step", "eval", "checkpoint", "sample", "log", "state", "finished", "marker")
__all__ = ["Trainer", "StepMetrics", "EvalMetrics", "CheckpointSaved", "SampleText", "Finished", "RunState"]


class Trainer(AddonHost):
    """Trains `model` with `optimizer` on (x, y) batches from train_loader; evaluates on val_loader.

    Everything beyond the four positional arguments is optional: a TrainConfig (or its fields
    as keywords), a learning-rate schedule `lr(step)`, a checkpoint folder (`Checkpoints`), a sampler
    `model -> (prompt, text)`, a scorer `model -> {EvalMetrics field: value}` run at each
    evaluation, and extra plain data stored in every checkpoint.
    """

    def __init__(self, model, optimizer, train_loader, val_loader, *, device=None,
                 config: TrainConfig | None = None, schedule: Schedule | None = None,
                 checkpoints: Checkpoints | None = None, sampler: Callable | None = None,
                 scorer: Callable | None = None,
                 grad_clip: float = 0.0, extra_state: dict | None = None, **overrides):
        base = config or _seed_defaults()
        names = {f.name for f in fields(TrainConfig)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown Trainer option(s): {', '.join(sorted(unknown))}")
        self.config = replace(base, **overrides)
        self.device = pick_device(device if device is not None else self.config.device)
        self.model = model.to(self.device)
        self.optimizer = optimizer
        rates.keep_base_rates(optimizer)  # each group's own rate, times the step's factor
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.schedule = schedule
        self.checkpoints = checkpoints
        self.sampler = sampler
        self.scorer = scorer
        self.extra_state = extra_state or {}
        self.grad_clip = grad_clip
        self.step = 0
        self.epoch = 0
        self.tokens_seen = 0
        self.elapsed = 0.0
        self.best_val_loss = math.inf
        self.last_val_loss: float | None = None
        self.last_eval_step = -1
        self.length: length.RunLength | None = None
        self.max_steps: int | None = None  # the planned number of steps, for progress and status
        if self.config.max_steps or self.config.epochs:  # a configured length; a negative one is refused here
            self.plan(None)
        self._scaler_state: dict | None = None
        self.lr_scale = 1.0  # times the schedule: rollbacks halve it
        self.extensions: dict[str, Addon] = {}  # add(): live edits, guards; their state rides in checkpoints
        self.step_checks: list[StepCheck] = []  # before_update(): why to skip this update, or None
        self.oom_handlers: list[ErrorHandler] = []  # on_step_error(): True if it redid the step's batches
        self._step_batches: list = []
        self.ranks: RankReducer | None = None  # a torchrun job's distributed.Coordinator
        self.world = 1  # ranks training together; tokens_seen counts them all
        self.agreed_stop = False
        self._t0 = 0.0
        self.precision: str | None = None
        self.precision_reason = ""
        self.events: dict[str, list[Callable]] = {name: [] for name in EVENTS}
        self._requests = RunRequests(lambda state, reason: self._emit("state", RunState(state, self.step, reason)))
        self._prepared = False
        self._micro = 0
        self._micro_losses: list[torch.Tensor] = []
        self._forward = self.model
        self.scaler: torch.amp.GradScaler | None = None
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    # ---- the seed's contract -------------------------------------------------------------
    def train_epoch(self) -> float:
        """One pass over train_loader (or until max_steps / stop); returns the mean loss."""
        self.prepare()
        losses: list[float] = []
        t_last = time.perf_counter()
        for x, y in self.train_loader:
            self._step_batches.append((x, y))
            try:
                loss = self._micro_step(x, y)
            except Exception as err:
                if not any(handle(self, err, self._step_batches) for handle in self.oom_handlers):
                    raise
            else:
                self._micro_losses.append(loss)
                self._micro += 1
            if self._micro < self.config.grad_accum:
                continue
            tokens = sum(bx.numel() for bx, _ in self._step_batches)
            self._step_batches = []
            metrics = steps.optimizer_step(self, tokens, t_last)
            if metrics is None:  # a step check skipped this update (engine/train/guards.py)
                continue
            losses.append(metrics.loss)
            self._after_step(metrics)
            t_last = time.perf_counter()
            if self._done():
                break
        else:
            self.epoch += 1
        return sum(losses) / len(losses) if losses else float("nan")

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean loss over val_loader (at most eval_batches batches) in eval mode."""
        self.prepare()
        was_training = self.model.training
        self.model.eval()
        total, count = torch.zeros((), device=self.device), 0
        for i, (x, y) in enumerate(self.val_loader):
            if i >= self.config.eval_batches:
                break
            with autocast_for(self.precision or "fp32", self.device):
                _, loss = self._loss(self.model, x, y)
            total += loss.float()
            count += 1
        self.model.train(was_training)
        if self.ranks is not None:  # each rank evaluated its slice of every batch: the mean over all of them
            total, count = self.ranks.reduce_eval(total, count)
        return (total / max(1, count)).item()

    def train(self, num_epochs: int | None = None) -> Finished:
        """Train num_epochs more epochs, or the configured length (max_steps or epochs); returns how it ended."""
        planned = self.plan(num_epochs)
        target_epoch = (self.epoch + num_epochs) if num_epochs is not None else planned.epochs
        self.prepare()
        self.log(f"training on {self.device} with {self.precision} ({self.precision_reason})")
        self._t0 = time.perf_counter() - self.elapsed
        run = self._requests
        run.loop_thread = threading.current_thread()
        run.set_state("stopping" if run.stopping else "running", run.stop_reason)
        try:
            while not self._done() and (target_epoch is None or self.epoch < target_epoch):
                mean = self.train_epoch()
                if target_epoch is not None and not run.stopping:
                    if self.last_eval_step != self.step:
                        self._run_eval()
                    self.log(f"epoch {self.epoch}: train loss {mean:.4f}, validation loss {self.last_val_loss:.4f}")
            ending = run.ending
            if ending is not None:
                if ending == "stopped":
                    run.set_state("stopping", run.stop_reason)
                self.save_checkpoint("stop" if ending == "stopped" else "last")
                return self._finish(ending, run.stop_reason)
            if self.last_eval_step != self.step:
                self._run_eval()
            self.save_checkpoint("last")
            return self._finish("finished")
        except TrainingError as err:
            self._finish("failed", str(err))
            raise
        except KeyboardInterrupt:
            self._finish("stopped", "interrupted mid-step; the last saved checkpoint is kept")
            raise
        except Exception as err:
            if is_out_of_memory(err):
                where = "the GPU" if self.device.type in ("cuda", "mps") else "the computer"
                oom = TrainingError(f"{where} ran out of memory; lower the batch size or context, or use a "
                                    "smaller model (the last checkpoint is kept)", "train.batch_size")
                self._finish("failed", str(oom))
                raise oom from None
            self._finish("failed", f"{type(err).__name__}: {err}")
            raise
        finally:
            run.loop_thread = None

    def plan(self, num_epochs: int | None = None) -> length.RunLength:
        """Decide the run's length (again, after an extension), through `length.plan`, the one owner of that decision."""
        try:
            per_epoch = len(self.train_loader) // self.config.grad_accum
        except TypeError:  # an iterable without a length
            per_epoch = None
        if num_epochs is not None:
            planned = length.plan(0, num_epochs, per_epoch)
            self.length = length.RunLength(None, self.epoch + num_epochs,
                                           self.step + planned.planned_steps if planned.planned_steps else None)
        else:
            self.length = length.plan(self.config.max_steps, self.config.epochs, per_epoch)
        self.max_steps = self.length.planned_steps
        return self.length

    # ---- one step (engine/train/steps.py) ----------------------------------------------------
    def prepare(self) -> None:
        """Resolve precision (timing fp32 against bf16 for auto, unless the run already chose), scaler, compile; once."""
        if self._prepared:
            return
        self._prepared = True
        if self.precision is None:
            batch = getattr(self.train_loader, "batch_size", None) or 8
            block = getattr(self.train_loader, "block_size", None) or getattr(self.model.config, "block_size", 64)
            shape = (int(batch), int(block or 64))
            self.precision, self.precision_reason = resolve_precision(self.config.precision, self.model,
                                                                      self.device, shape)
        if self.precision == "fp16":
            self.scaler = torch.amp.GradScaler("cuda")
            if self._scaler_state is not None:
                self.scaler.load_state_dict(self._scaler_state)
        if self.config.compile:
            self._forward = torch.compile(self._forward)  # the model, or its DistributedDataParallel wrapper
        self._t0 = time.perf_counter() - self.elapsed

    @staticmethod
    def _loss(model, x, y):
        out = model(x, y)
        if isinstance(out, tuple):
            return out
        return out, torch.nn.functional.cross_entropy(out.view(-1, out.size(-1)), y.reshape(-1))

    def _micro_step(self, x, y) -> torch.Tensor:
        return steps.micro_step(self, x, y)

    def _after_step(self, m: StepMetrics) -> None:
        cfg = self.config
        if self.step % cfg.log_interval == 0 or self.step == self.max_steps:
            self._emit("step", m)
        improved = False
        if self.step % cfg.eval_interval == 0:
            improved = self._run_eval()
        periodic = cfg.checkpoint_interval and self.step % cfg.checkpoint_interval == 0
        if periodic or improved:
            self.save_checkpoint("step", is_best=improved)
        self._requests.honour(self._handlers)

    def _done(self) -> bool:
        limit = self.length.max_steps if self.length is not None else None
        # the ranks of a job stop together, at the step where they agreed to (engine/train/distributed.py)
        stopping = self._requests.stopping if self.ranks is None else self.agreed_stop
        return stopping or (limit is not None and self.step >= limit)

    # ---- evaluation, samples, checkpoints --------------------------------------------------
    def _run_eval(self) -> bool:
        val = self.evaluate()
        self.last_eval_step, self.last_val_loss = self.step, val
        improved = val < self.best_val_loss
        if improved:
            self.best_val_loss = val
        scores = self.scorer(self.model) if self.scorer is not None else {}
        self._emit("eval", EvalMetrics(self.step, val, self.best_val_loss, self.elapsed, self.tokens_seen, **scores))
        if self.sampler is not None and self.config.sample_tokens > 0:
            self._sample()
        return improved

    def _sample(self) -> None:
        if self.sampler is None:
            return
        prompt, text = self.sampler(self.model)
        self._emit("sample", SampleText(self.step, prompt, text))

    def save_checkpoint(self, kind: str = "step", is_best: bool = False) -> None:
        """Save a checkpoint of the current step into the checkpoint folder (if there is one)."""
        if self.checkpoints is None or self.step == 0:
            return
        path = self.checkpoints.save(self.state_dict(), self.step, self.last_val_loss if
                                     self.last_eval_step == self.step else None, is_best, kind)
        self._emit("checkpoint", CheckpointSaved(str(path), self.step, self.last_val_loss, kind))

    def _finish(self, status: str, reason: str = "") -> Finished:
        best = self.best_val_loss if math.isfinite(self.best_val_loss) else None
        info = Finished(status, self.step, best, reason)
        self._requests.set_state(status, reason)
        self._emit("finished", info)
        return info

    # ---- requests honoured between steps ---------------------------------------------------
    @property
    def _handlers(self) -> dict[str, Callable]:
        """What each request does once the loop reaches a step boundary (pause and resume change the state first)."""
        return {"pause": lambda _: self.marker("pause", f"paused at step {self.step}"),
                "resume": self._resumed,
                "edit": self._edit,
                "save": lambda _: self.save_checkpoint("step", is_best=False),
                "evaluate": self._evaluate_now,
                "sample": lambda _: self._sample(),
                "call": lambda fn: fn(self)}

    def _resumed(self, _payload) -> None:
        self.marker("resume", f"resumed at step {self.step}")
        self._t0 = time.perf_counter() - self.elapsed

    def _edit(self, changes: dict) -> None:
        edits = self.extensions.get("edits")
        if edits is not None:
            edits.apply(self, changes)  # type: ignore[attr-defined]

    def _evaluate_now(self, _payload) -> None:
        if self._run_eval():
            self.save_checkpoint("step", is_best=True)

    # ---- exact resume (engine/train/snapshot.py) ---------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly where this run is now."""
        return snapshot.capture(self)

    def load_state_dict(self, state: dict) -> None:
        """Restore a state_dict(): weights, optimizer, counters, data position, RNG states, extensions."""
        snapshot.restore(self, state)


def _seed_defaults() -> TrainConfig:
    """Defaults for the seed snippet: epochs given to train(), evaluation once per epoch, fp32."""
    return TrainConfig(max_steps=0, epochs=0, eval_interval=10**9, eval_batches=10**9,
                       checkpoint_interval=0, precision="fp32", device="auto")
