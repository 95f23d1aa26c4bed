"""The training loop: forward, backward, step, and announce what happened.

Listeners (the terminal progress bar, the metrics file, the Qt worker) subscribe with
`trainer.on(event, fn)`; the loop never knows who listens. Requests from other threads
(pause, resume, stop, save, evaluate, sample, call) are honoured between steps.
"""
from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import fields, replace

import torch

from autogpt_gui import length
from autogpt_gui.config import TrainConfig
from autogpt_gui.engine.train import snapshot
from autogpt_gui.engine.train.addons import Checkpoints
from autogpt_gui.engine.train.events import (
    CheckpointSaved,
    EvalMetrics,
    Finished,
    Marker,
    RunState,
    SampleText,
    StepMetrics,
)
from autogpt_gui.engine.train.precision import autocast_for, pick_device, resolve_precision
from autogpt_gui.engine.train.schedules import Schedule
from autogpt_gui.errors import TrainingError

log = logging.getLogger("autogpt_gui")
EVENTS = ("step", "eval", "checkpoint", "sample", "log", "state", "finished", "marker")
__all__ = ["Trainer", "StepMetrics", "EvalMetrics", "CheckpointSaved", "SampleText", "Finished", "RunState"]


class Trainer:
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
        self.optimizer, self.train_loader, self.val_loader = optimizer, train_loader, val_loader
        self.schedule, self.checkpoints, self.sampler, self.scorer = schedule, checkpoints, sampler, scorer
        self.extra_state = extra_state or {}
        self.grad_clip = grad_clip
        self.step = self.epoch = self.tokens_seen = 0
        self.elapsed = 0.0
        self.best_val_loss = math.inf
        self.last_val_loss: float | None = None
        self.last_eval_step = -1
        self.length: length.RunLength | None = None
        self.max_steps: int | None = None  # the planned number of steps, for progress and status
        if self.config.max_steps or self.config.epochs:  # a configured length; a negative one is refused here
            self._plan(None)
        self._scaler_state: dict | None = None
        self.lr_scale = 1.0  # times the schedule: rollbacks halve it
        self.extensions: dict[str, object] = {}  # add(): live edits, guards; their state rides in checkpoints
        self.step_checks: list[Callable] = []  # fn(trainer, loss, grad_norm) -> why to skip this update, or None
        self.oom_handlers: list[Callable] = []  # fn(trainer, error, this step's batches) -> True if it redid them
        self._step_batches: list = []
        self.ranks = None  # a torchrun job's engine/distributed.Coordinator: reduce() a step, reduce_eval()
        self.world = 1  # ranks training together; tokens_seen counts them all
        self.agreed_stop = False
        self._end_status = "stopped"  # a "finish" request (early stop) ends the run as finished
        self._t0 = 0.0
        self.precision: str | None = None
        self.precision_reason = ""
        self.events: dict[str, list[Callable]] = {name: [] for name in EVENTS}
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self.stop_reason = ""
        self._paused, self.state = False, "idle"
        self._state_lock = threading.RLock()
        self._loop_thread: threading.Thread | None = None
        self._prepared = False
        self._micro = 0
        self._micro_losses: list[torch.Tensor] = []
        self._forward = self.model
        self.scaler: torch.amp.GradScaler | None = None
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    # ---- events and requests -----------------------------------------------------------
    def on(self, event: str, fn: Callable) -> None:
        """Call fn(payload) whenever `event` happens (one of EVENTS)."""
        self.events[event].append(fn)

    def _emit(self, event: str, payload) -> None:
        if event == "log":
            log.info(payload)
        for fn in self.events[event]:
            fn(payload)

    def add(self, name: str, extension) -> None:
        """Attach an extension (engine/train/guards.py, engine/train/edits.py): extension.attach(trainer) subscribes it; its
        state_dict() / load_state_dict() are kept in checkpoints under its name."""
        self.extensions[name] = extension
        extension.attach(self)

    def marker(self, kind: str, text: str, values: dict | None = None) -> None:
        """Announce something that happened at this step (a Marker on the charts and in metrics.jsonl)."""
        self._emit("log", text)
        self._emit("marker", Marker(self.step, kind, text, self.elapsed, values or {}))

    def request(self, kind: str, payload=None) -> None:
        """Thread-safe: pause, resume, stop or finish (payload: the reason), save, evaluate, sample, edit
        (payload: {setting: value}), or call (payload: fn(trainer)).

        Honoured between steps. A request from another thread is announced at once as a
        "pausing" / "stopping" state; one from the loop's own thread (a signal handler) is
        announced when honoured, so nothing is written from inside a signal handler.
        """
        if kind in ("stop", "finish"):
            if payload and not self.stop_reason:
                self.stop_reason = str(payload)
            if kind == "finish" and not self._stop.is_set():
                self._end_status = "finished"
            self._stop.set()
        self._requests.put((kind, payload))
        if self._loop_thread is not None and threading.current_thread() is not self._loop_thread:
            with self._state_lock:
                if kind == "pause" and self.state == "running":
                    self._set_state("pausing")
                elif kind == "stop" and self.state in ("running", "pausing", "paused"):
                    self._set_state("stopping", self.stop_reason)

    def _set_state(self, state: str, reason: str = "") -> None:
        """Change the run's state and announce it; the lock keeps announcements in order."""
        with self._state_lock:
            if state == self.state:
                return
            self.state = state
            self._emit("state", RunState(state, self.step, reason))

    def pause(self) -> None:
        self.request("pause")

    def resume(self) -> None:
        self.request("resume")

    def stop(self) -> None:
        self.request("stop")

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
            metrics = self._optimizer_step(tokens, t_last)
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
        planned = self._plan(num_epochs)
        target_epoch = (self.epoch + num_epochs) if num_epochs is not None else planned.epochs
        self.prepare()
        self._emit("log", f"training on {self.device} with {self.precision} ({self.precision_reason})")
        self._t0 = time.perf_counter() - self.elapsed
        self._loop_thread = threading.current_thread()
        self._set_state("stopping" if self._stop.is_set() else "running", self.stop_reason)
        try:
            while not self._done() and (target_epoch is None or self.epoch < target_epoch):
                mean = self.train_epoch()
                if target_epoch is not None and not self._stop.is_set():
                    if self.last_eval_step != self.step:
                        self._run_eval()
                    self._emit("log", f"epoch {self.epoch}: train loss {mean:.4f}, "
                                      f"validation loss {self.last_val_loss:.4f}")
            if self._stop.is_set():
                if self._end_status == "stopped":
                    self._set_state("stopping", self.stop_reason)
                self.save_checkpoint("stop" if self._end_status == "stopped" else "last")
                return self._finish(self._end_status, self.stop_reason)
            if self.last_eval_step != self.step:
                self._run_eval()
            self.save_checkpoint("last")
            return self._finish("finished")
        except TrainingError as err:
            self._finish("failed", str(err))
            raise
        except torch.cuda.OutOfMemoryError:
            oom = TrainingError("the GPU ran out of memory; lower the batch size or context, or use a smaller "
                                "model (the last checkpoint is kept)", "train.batch_size")
            self._finish("failed", str(oom))
            raise oom from None
        except KeyboardInterrupt:
            self._finish("stopped", "interrupted mid-step; the last saved checkpoint is kept")
            raise
        except Exception as err:
            self._finish("failed", f"{type(err).__name__}: {err}")
            raise
        finally:
            self._loop_thread = None

    def _plan(self, num_epochs: int | None) -> length.RunLength:
        """Decide the run's length once, through `length.plan` (the one owner of that decision)."""
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

    # ---- one step ------------------------------------------------------------------------
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
            scaler = self.scaler = torch.amp.GradScaler("cuda")
            if self._scaler_state is not None:
                scaler.load_state_dict(self._scaler_state)
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
        if x.device != self.device:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self._micro == 0 and self.schedule is not None:
            lr = self.schedule(self.step) * self.lr_scale
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        # several ranks (DistributedDataParallel): average gradients only on the step's last micro-batch
        local = self._micro < self.config.grad_accum - 1 and hasattr(self._forward, "no_sync")
        with self._forward.no_sync() if local else contextlib.nullcontext():
            with autocast_for(self.precision or "fp32", self.device):
                _, loss = self._loss(self._forward, x, y)
            scaled = loss / self.config.grad_accum
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
        return loss.detach()

    def _optimizer_step(self, step_tokens: int, t_last: float) -> StepMetrics | None:
        loss = float(sum(self._micro_losses) / len(self._micro_losses))
        if self.ranks is not None:  # several ranks: their mean loss, their edits (engine/train/distributed.py)
            loss = self.ranks.reduce(self, loss)
        grad_norm = None
        if self.grad_clip and self.grad_clip > 0:
            if self.scaler:
                self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        norm = None if grad_norm is None else float(grad_norm)
        if any(check(self, loss, norm) for check in self.step_checks):
            self.optimizer.zero_grad(set_to_none=True)  # the update never happens: the weights stay good
            self._micro, self._micro_losses = 0, []
            return None
        if not math.isfinite(loss):  # before the update, so the weights in memory stay finite too
            raise TrainingError(
                f"the loss became {loss} at step {self.step + 1}; training stopped and the last good checkpoint "
                "is kept. Lower the learning rate, enable gradient clipping, or use fp32", "optim.lr")
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._micro, self._micro_losses = 0, []
        self.step += 1
        tokens = step_tokens * self.world
        self.tokens_seen += tokens
        now = time.perf_counter()
        self.elapsed = now - self._t0
        return StepMetrics(self.step, self.epoch, loss, self.optimizer.param_groups[0]["lr"],
                           norm, tokens / max(now - t_last, 1e-9),
                           self.elapsed, self.tokens_seen, self.max_steps)

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
        self._handle_requests()

    def _done(self) -> bool:
        limit = self.length.max_steps if self.length is not None else None
        # the ranks of a job stop together, at the step where they agreed to (engine/train/distributed.py)
        stopping = self._stop.is_set() if self.ranks is None else self.agreed_stop
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
        self._set_state(status, reason)
        self._emit("finished", info)
        return info

    def _handle_requests(self) -> None:
        while True:
            try:
                kind, payload = self._requests.get(timeout=0.05) if self._paused else self._requests.get_nowait()
            except queue.Empty:
                if self._paused and not self._stop.is_set():
                    continue
                return
            if kind == "pause" and not self._paused:
                self._paused = True
                self._set_state("paused")
                self.marker("pause", f"paused at step {self.step}")
            elif kind == "resume" and self._paused:
                self._paused = False
                self._set_state("running")
                self.marker("resume", f"resumed at step {self.step}")
                self._t0 = time.perf_counter() - self.elapsed
            elif kind == "edit" and "edits" in self.extensions:
                self.extensions["edits"].apply(self, payload)  # type: ignore[attr-defined]
            elif kind in ("stop", "finish"):
                self._paused = False
                return
            elif kind == "save":
                self.save_checkpoint("step", is_best=False)
            elif kind == "evaluate":
                if self._run_eval():
                    self.save_checkpoint("step", is_best=True)
            elif kind == "sample" and self.sampler is not None:
                self._sample()
            elif kind == "call":
                payload(self)

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
