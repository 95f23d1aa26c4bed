"""Live edits: change a running (or paused) run's settings at the next step boundary, and keep them.

`trainer.request("edit", {"optim.lr": 5e-4})` from any thread (the window, the control file, Python).
Each edit is checked like the configuration it changes (a NaN learning rate is refused at its field),
announced as an "edit" Marker with old and new values (metrics.jsonl, the log, the charts), and stored
in every later checkpoint, so a run resumed from one continues with the edited values.
"""
from __future__ import annotations

from dataclasses import replace

from autogpt_gui.config import RunConfig, set_field
from autogpt_gui.engine.train.schedules import LRSchedule, extended
from autogpt_gui.errors import ConfigError

EDITABLE = ("optim.lr", "optim.min_lr", "optim.grad_clip", "optim.weight_decay", "train.eval_interval",
            "train.checkpoint_interval", "train.sample_prompt", "train.sample_tokens")


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
            trainer._emit("log", f"edit refused: {err}")
            return
        before = {k: self._current(trainer, k) for k in values}
        for key, value in values.items():
            self._set(trainer, key, value)
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
        trainer._plan(None)
        self._extend_schedule(trainer, start, total)
        lr = trainer.schedule(start) * trainer.lr_scale if trainer.schedule is not None else None
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

    @staticmethod
    def _current(trainer, key: str):
        section, name = key.split(".")
        if key in ("optim.lr", "optim.min_lr") and hasattr(trainer.schedule, name):
            return getattr(trainer.schedule, name)
        if key == "optim.grad_clip":
            return trainer.grad_clip
        if key == "optim.weight_decay":
            return next((g["weight_decay"] for g in trainer.optimizer.param_groups if g.get("decay", True)), 0.0)
        if key == "train.sample_prompt":
            return getattr(trainer.sampler, "prompt", "")
        return getattr(trainer.config, name, None)

    @staticmethod
    def _set(trainer, key: str, value) -> None:
        section, name = key.split(".")
        if key in ("optim.lr", "optim.min_lr"):
            if hasattr(trainer.schedule, name):  # the schedule keeps its shape around the new peak or floor
                trainer.schedule = replace(trainer.schedule, **{name: value})
            elif name == "lr":
                for group in trainer.optimizer.param_groups:
                    group["lr"] = value
        elif key == "optim.grad_clip":
            trainer.grad_clip = value
        elif key == "optim.weight_decay":
            for group in trainer.optimizer.param_groups:
                if group.get("decay", group["weight_decay"] > 0):
                    group["weight_decay"] = value
        elif key == "train.sample_prompt":
            if hasattr(trainer.sampler, "prompt"):
                trainer.sampler.prompt = value
        else:
            trainer.config = replace(trainer.config, **{name: value})
            if key == "train.sample_tokens" and hasattr(trainer.sampler, "tokens"):
                trainer.sampler.tokens = value
