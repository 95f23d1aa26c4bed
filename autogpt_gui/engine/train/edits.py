"""Live edits: change a running (or paused) run's settings at the next step boundary, and keep them.

`trainer.request("edit", {"optim.lr": 5e-4})` from any thread (the window, the control file, Python).
Each edit is checked like the configuration it changes (a NaN learning rate is refused at its field),
announced as an "edit" Marker with old and new values (metrics.jsonl, the log, the charts), and stored
in every later checkpoint, so a run resumed from one continues with the edited values.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from autogpt_gui.config import RunConfig, set_field
from autogpt_gui.engine.train import rates
from autogpt_gui.engine.train.schedules import LRSchedule, extended
from autogpt_gui.errors import ConfigError
from autogpt_gui.settings import live_keys

EDITABLE = live_keys()  # the settings whose description says they can change while a run trains


def checked(cfg: RunConfig, changes: dict) -> tuple[RunConfig, dict]:
    """The configuration with changes applied and the changes in their fields' types; ConfigError (every
    problem at its field) for a setting that cannot change live or a value the configuration refuses."""
    problems: list[tuple[str, str]] = []
    edited = replace(cfg)
    for key, value in changes.items():
        if key not in EDITABLE:
            problems.append((key, f"cannot change while training; live edits: {', '.join(EDITABLE)}"))
            continue
        section, name = key.split(".")
        try:
            setattr(edited, section, set_field(getattr(edited, section), section, name, value))
        except ConfigError as err:
            problems.extend(err.problems)
    before = set(cfg.validate())
    problems += [p for p in edited.validate() if p not in before]  # what these changes broke (min_lr above lr, ...)
    if problems:
        raise ConfigError(problems)
    return edited, {k: getattr(getattr(edited, k.split(".")[0]), k.split(".")[1]) for k in changes}


class LiveEdits:
    """The trainer's "edits" extension: applies changes to the loop and remembers them for checkpoints."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg  # the configuration as the run now trains with it (edits included)
        self.changed: dict = {}  # every setting edited so far -> its current value
        self.version = 0  # counts applied edits: other ranks of a job catch up when it grows

    def attach(self, trainer) -> None:
        pass

    def apply(self, trainer, changes: dict, announce: bool = True) -> None:
        """Apply at this step boundary (between steps). Invalid changes are refused as a whole and logged."""
        try:
            self.cfg, values = checked(self.cfg, changes)
        except ConfigError as err:
            trainer.log(f"edit refused: {err}")
            return
        before = {k: LIVE[k].read(trainer) for k in values}
        for key, value in values.items():
            LIVE[key].apply(trainer, value)
        self.changed.update(values)
        self.version += 1
        if announce:
            diff = {k: [before[k], v] for k, v in values.items() if before[k] != v}
            text = ", ".join(f"{k.split('.')[1]} {before[k]} -> {v}" for k, v in values.items() if k in diff)
            trainer.marker("edit", f"edit at step {trainer.step}: {text or 'no change'}", diff)

    def extend(self, trainer, steps: int) -> None:
        """Continue a finished or stopped run for `steps` more steps. The schedule's tail is recomputed from
        this step (cosine decays from the current rate to min_lr at the new end; WSD holds, then decays)."""
        if steps < 1:
            raise ConfigError([("--extend", "extend by at least one step")])
        start, total = trainer.step, trainer.step + steps
        self.cfg.train.max_steps, self.cfg.train.epochs = total, 0
        trainer.config = replace(trainer.config, max_steps=total, epochs=0)
        trainer.plan()
        self._extend_schedule(trainer, start, total)
        factor = trainer.lr_factor(start)
        lr = None if factor is None else factor * rates.reference_rate(trainer.schedule, trainer.optimizer)
        self.changed["extend"] = {"from": start, "total": total, "lr": getattr(trainer.schedule, "tail_lr", None)}
        trainer.marker("extend", f"extended by {steps} steps to {total}" + (
            f"; the learning rate goes on from {lr:.3g}" if lr is not None else ""), {"max_steps": [start, total]})

    @staticmethod
    def _extend_schedule(trainer, start: int, total: int, lr: float | None = None) -> None:
        if isinstance(trainer.schedule, LRSchedule):
            trainer.schedule = extended(trainer.schedule, start, total) if lr is None else \
                replace(trainer.schedule, total_steps=total, tail_from=start, tail_lr=lr)

    def state_dict(self) -> dict:
        return dict(self.changed)

    def load_state_dict(self, trainer, saved: dict) -> None:
        saved = dict(saved)
        ext = saved.pop("extend", None)
        self.apply(trainer, saved, announce=False)
        if ext is not None:  # the extended run's tail, as it was when it was extended
            self.changed["extend"] = ext
            self._extend_schedule(trainer, int(ext["from"]), int(ext["total"]), ext["lr"])


@dataclass(frozen=True)
class Live:
    """How a live setting is read from a running trainer, and how a new value is applied to it."""

    read: Callable[[Any], Any]
    apply: Callable[[Any, Any], None]


def _read_lr(trainer):
    if hasattr(trainer.schedule, "lr"):
        return trainer.schedule.lr
    return rates.base_rates(trainer.optimizer)[0]


def _apply_lr(trainer, value: float) -> None:
    """The schedule keeps its shape around the new peak; every group's base rate moves in proportion."""
    before = _read_lr(trainer)
    rates.scale_base_rates(trainer.optimizer, value / before if before else 1.0)
    if hasattr(trainer.schedule, "lr"):
        trainer.schedule = replace(trainer.schedule, lr=value)
    else:  # no schedule: the groups train at their base rates
        rates.apply_factor(trainer.optimizer, 1.0)


def _apply_min_lr(trainer, value: float) -> None:
    if hasattr(trainer.schedule, "min_lr"):  # the schedule keeps its shape above the new floor
        trainer.schedule = replace(trainer.schedule, min_lr=value)


def _read_weight_decay(trainer) -> float:
    return next((g["weight_decay"] for g in trainer.optimizer.param_groups if g.get("decay", True)), 0.0)


def _apply_weight_decay(trainer, value: float) -> None:
    for group in trainer.optimizer.param_groups:
        if group.get("decay", group["weight_decay"] > 0):
            group["weight_decay"] = value


def _set_grad_clip(trainer, value: float) -> None:
    trainer.grad_clip = value


def _set_sample_prompt(trainer, value: str) -> None:
    if hasattr(trainer.sampler, "prompt"):
        trainer.sampler.prompt = value


def _train_setting(name: str, also: Callable[[Any, Any], None] | None = None) -> Live:
    """A TrainConfig field the loop reads at every step (and, with `also`, somewhere else too)."""

    def apply(trainer, value) -> None:
        trainer.config = replace(trainer.config, **{name: value})
        if also is not None:
            also(trainer, value)

    return Live(lambda trainer: getattr(trainer.config, name, None), apply)


def _set_sample_tokens(trainer, value: int) -> None:
    if hasattr(trainer.sampler, "tokens"):
        trainer.sampler.tokens = value


LIVE: dict[str, Live] = {
    "optim.lr": Live(_read_lr, _apply_lr),
    "optim.min_lr": Live(lambda trainer: getattr(trainer.schedule, "min_lr", None), _apply_min_lr),
    "optim.grad_clip": Live(lambda trainer: trainer.grad_clip, _set_grad_clip),
    "optim.weight_decay": Live(_read_weight_decay, _apply_weight_decay),
    "train.eval_interval": _train_setting("eval_interval"),
    "train.checkpoint_interval": _train_setting("checkpoint_interval"),
    "train.sample_prompt": Live(lambda trainer: getattr(trainer.sampler, "prompt", ""), _set_sample_prompt),
    "train.sample_tokens": _train_setting("sample_tokens", _set_sample_tokens),
}
