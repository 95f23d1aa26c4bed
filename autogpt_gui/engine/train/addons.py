"""The public interface of the Trainer's add-ons, in one place; and what the Trainer is handed from outside.

An add-on (`Addon`: early stop, rollback, the out-of-memory guard, live edits, the ranks' coordinator,
the control file, the run folder) is attached with `trainer.add(name, addon)`. In `attach(trainer)` and
later it may use what `AddonHost` defines, and nothing private of the Trainer:

- subscribe: `on(event, fn)` (events.py records), `before_update(check)` (skip an update, e.g. a
  rollback), `on_step_error(handler)` (a micro-batch raised, e.g. out of memory: `redo_step(batches)`);
- announce: `log(text)`, `marker(kind, text, values)`;
- ask: `request(kind, payload)` (requests.KINDS), `hold_requests(kind, fn)` and `pass_on(kind)` to
  delay a kind (a collective evaluation), and read `state`, `ending`, `stop_reason`;
- learning rate: `lr_factor(step)` (schedule x rollback scale; each optimizer group trains at its
  `group["base_lr"]` times it, see rates.py), `lr_scale` (rollbacks multiply it), `schedule` (live edits
  replace it), `refresh_lr()` after changing either mid-step;
- across ranks: set `ranks` (a `RankReducer`), `world` and `agreed_stop`; `forward_through(module)` runs
  the forward pass through a wrapper of the model (DistributedDataParallel);
- checkpoints: its own `state_dict()` / `load_state_dict(trainer, saved)` ride in every checkpoint under
  its name; `restore_scaler(state)` puts back the gradient scaler's; `plan()` re-plans the length after
  `config` changed it.

Plain attributes (`step`, `epoch`, `tokens_seen`, `config`, `model`, `optimizer`, `device`,
`train_loader`, `sampler`, `grad_clip`, `extensions`, ...) may be read, and set where a setting changes.
Only the training loop's own modules (trainer.py, steps.py, requests.py and this host) touch the rest.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from autogpt_gui.engine.train import rates
from autogpt_gui.engine.train.events import Marker

if TYPE_CHECKING:
    import torch

    from autogpt_gui.config import TrainConfig
    from autogpt_gui.engine.train.requests import RunRequests
    from autogpt_gui.engine.train.schedules import Schedule

log = logging.getLogger("autogpt_gui")

StepCheck = Callable[[Any, float, "float | None"], "str | None"]  # (trainer, loss, grad_norm) -> why to skip
ErrorHandler = Callable[[Any, BaseException, list], bool]  # (trainer, error, the step's batches) -> redone?


class Checkpoints(Protocol):
    """Where the Trainer saves its checkpoints: run.checkpoints.CheckpointFolder is the one in use."""

    def save(self, payload: dict, step: int, val_loss: float | None, is_best: bool, kind: str = "step") -> Path:
        """Write payload as the checkpoint of step; return its path."""
        ...


class Addon(Protocol):
    """What trainer.add() takes: attach() subscribes it; its state rides in checkpoints under its name."""

    def attach(self, trainer: Any) -> None:
        """Subscribe to the trainer (events, checks, handlers); called once, by trainer.add()."""
        ...

    def state_dict(self) -> dict:
        """Plain data to keep in every checkpoint."""
        ...

    def load_state_dict(self, trainer: Any, saved: dict) -> None:
        """Restore what state_dict() returned, on resume."""
        ...


class RankReducer(Protocol):
    """A torchrun job's ranks, seen by the loop (distributed.Coordinator): agree on a step and an evaluation."""

    def reduce(self, trainer: Any, loss: float) -> float:
        """Before each update, on every rank: the mean loss over ranks (and rank 0's stops and edits)."""
        ...

    def reduce_eval(self, total: torch.Tensor, count: int) -> tuple[torch.Tensor, int]:
        """The validation sums of all ranks together."""
        ...


class AddonHost:
    """The Trainer's face to listeners and add-ons: its events, requests and hooks (see the module's text)."""

    step: int
    config: TrainConfig
    optimizer: torch.optim.Optimizer
    schedule: Schedule | None
    lr_scale: float
    elapsed: float
    scaler: torch.amp.GradScaler | None
    events: dict[str, list[Callable]]
    extensions: dict[str, Addon]
    step_checks: list[StepCheck]
    oom_handlers: list[ErrorHandler]
    _requests: RunRequests
    _forward: Any  # the model, its DistributedDataParallel wrapper, or a compiled one
    _scaler_state: dict | None
    _micro: int
    _micro_losses: list[torch.Tensor]

    # ---- events --------------------------------------------------------------------------
    def on(self, event: str, fn: Callable) -> None:
        """Call fn(payload) whenever `event` happens (one of trainer.EVENTS)."""
        self.events[event].append(fn)

    def _emit(self, event: str, payload) -> None:
        if event == "log":
            log.info(payload)
        for fn in self.events[event]:
            fn(payload)

    def log(self, text: str) -> None:
        """A line for people: the log, the terminal, the window's log panel."""
        self._emit("log", text)

    def marker(self, kind: str, text: str, values: dict | None = None) -> None:
        """Announce something that happened at this step (a Marker on the charts and in metrics.jsonl)."""
        self._emit("log", text)
        self._emit("marker", Marker(self.step, kind, text, self.elapsed, values or {}))

    def add(self, name: str, extension: Addon) -> None:
        """Attach an add-on: extension.attach(trainer) subscribes it; its state_dict() / load_state_dict()
        are kept in checkpoints under its name."""
        self.extensions[name] = extension
        extension.attach(self)

    # ---- requests (requests.py) ----------------------------------------------------------
    def request(self, kind: str, payload=None) -> None:
        """Thread-safe: one of requests.KINDS: pause, resume, stop or finish (payload: the reason), save,
        evaluate, sample, edit (payload: {setting: value}), or call (payload: fn(trainer)).

        Honoured between steps. A request from another thread is announced at once as a
        "pausing" / "stopping" state; one from the loop's own thread (a signal handler) is
        announced when honoured, so nothing is written from inside a signal handler.
        """
        self._requests.request(kind, payload)

    def hold_requests(self, kind: str, fn: Callable) -> None:
        """Requests of `kind` go to fn(payload) instead of the queue; fn passes one on with pass_on()."""
        self._requests.hold(kind, fn)

    def pass_on(self, kind: str, payload=None) -> None:
        """Queue a request past any hold_requests() (an add-on that held it decided it is time)."""
        self._requests.put(kind, payload)

    @property
    def state(self) -> str:
        """The run's state: one of events.STATES."""
        return self._requests.state

    @property
    def stop_reason(self) -> str:
        """Why the run was asked to stop ("" if it was not, or gave no reason)."""
        return self._requests.stop_reason

    @property
    def ending(self) -> str | None:
        """None while no stop was asked for; else how the run will end: "stopped", or "finished"."""
        return self._requests.ending

    def pause(self) -> None:
        """Pause at the next step boundary."""
        self.request("pause")

    def resume(self) -> None:
        """Go on after a pause."""
        self.request("resume")

    def stop(self) -> None:
        """Stop at the next step boundary, saving a checkpoint."""
        self.request("stop")

    # ---- hooks into the step (steps.py) --------------------------------------------------
    def before_update(self, check: StepCheck) -> None:
        """check(trainer, loss, grad_norm) runs before every update; a reason it returns skips the update."""
        self.step_checks.append(check)

    def on_step_error(self, handler: ErrorHandler) -> None:
        """handler(trainer, error, the step's batches) runs when a micro-batch raises; True: it redid them."""
        self.oom_handlers.append(handler)

    def redo_step(self, micro_batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Start the step in progress again from its first micro-batch, on `micro_batches`: its gradients
        and losses so far are dropped (the out-of-memory guard redoes a step in halves)."""
        self.optimizer.zero_grad(set_to_none=True)
        self._micro = 0
        self._micro_losses = []
        for x, y in micro_batches:
            self._micro_losses.append(self._micro_step(x, y))
            self._micro += 1

    def _micro_step(self, x, y) -> torch.Tensor:
        raise NotImplementedError  # the Trainer's

    def lr_factor(self, step: int | None = None) -> float | None:
        """The learning-rate factor of `step` (this one by default): the schedule over the rate it is built
        for, times lr_scale; each group trains at its base rate times it. None without a schedule."""
        if self.schedule is None:
            return None
        return rates.lr_factor(self.schedule, self.step if step is None else step, self.lr_scale, self.optimizer)

    def refresh_lr(self) -> None:
        """Set every group's rate for this step (done at its first micro-batch; again after a mid-step edit)."""
        factor = self.lr_factor()
        if factor is not None:
            rates.apply_factor(self.optimizer, factor)

    def forward_through(self, module: torch.nn.Module) -> None:
        """Run the forward pass through `module`, a wrapper of the model (DistributedDataParallel); before
        prepare()."""
        self._forward = module

    def restore_scaler(self, state: dict | None) -> None:
        """The gradient scaler's saved state: loaded now if the scaler exists, else when prepare() makes it."""
        self._scaler_state = state
        if state is not None and self.scaler is not None:
            self.scaler.load_state_dict(state)
