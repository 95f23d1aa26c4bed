"""How long a run is: the one place that turns settings and data size into steps and epochs.

The trainer, the schedule, the estimates, the progress bar and `resume --extend` all ask here,
so a run's length cannot be decided twice. No torch and no Qt.
"""
from __future__ import annotations

from dataclasses import dataclass

from autogpt_gui.errors import ConfigError


@dataclass(frozen=True)
class RunLength:
    """`max_steps` ends a step-counted run; `epochs` ends an epoch-counted one (then max_steps is None).

    `planned_steps` is what progress bars and schedules count to: max_steps, or epochs times the
    optimizer steps in one epoch when that is known.
    """

    max_steps: int | None
    epochs: int | None
    planned_steps: int | None


def problems(max_steps: int, epochs: int) -> list[tuple[str, str]]:
    """What is wrong with a length, as (field, message) pairs; empty when it can run."""
    out = []
    if epochs < 0:
        out.append(("train.epochs", f"epochs ({epochs}) must be zero (count max steps instead) or positive"))
    if max_steps < 0:
        out.append(("train.max_steps", f"max steps ({max_steps}) must be zero (count epochs instead) or positive"))
    if not out and max_steps < 1 and epochs < 1:
        out.append(("train.max_steps", "the run has no length: set max steps or epochs to at least 1"))
    return out


def plan(max_steps: int, epochs: int, steps_per_epoch: int | None = None) -> RunLength:
    """The run's length from its settings; epochs win when both are set. Raises ConfigError naming the setting."""
    found = problems(max_steps, epochs)
    if found:
        raise ConfigError(found)
    if epochs > 0:
        planned = max(1, steps_per_epoch * epochs) if steps_per_epoch else None
        return RunLength(None, epochs, planned)
    return RunLength(max_steps, None, max_steps)


def epochs_covered(planned_steps: int, tokens_per_step: int, corpus_tokens: int) -> float:
    """How many passes over the data a number of steps makes."""
    return planned_steps * tokens_per_step / max(1, corpus_tokens)
