"""What a run announces: one dataclass per event, the schema every listener derives from.

No torch and no Qt here, so the charts, the run folder, the command line and a follower read
the same records. A new metric is a new field on one of these classes and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

# The life of a run. "pausing" and "stopping" are asked for but not yet honoured (between steps).
STATES = ("idle", "running", "pausing", "paused", "stopping", "stopped", "finished", "failed")
ENDED = ("stopped", "finished", "failed")
# What the charts mark on their step axis, besides evaluations and checkpoints (which have records of their own).
MARKERS = ("edit", "rollback", "early_stop", "pause", "resume", "resumed", "extend", "oom")


@dataclass
class StepMetrics:
    """One optimizer step."""

    step: int
    epoch: int
    loss: float
    lr: float
    grad_norm: float | None
    tokens_per_sec: float
    elapsed: float
    tokens_seen: int
    max_steps: int | None


@dataclass
class EvalMetrics:
    """One evaluation on the validation windows; `accuracy` (0-1, exact match on held-out examples) for task data."""

    step: int
    val_loss: float
    best_val_loss: float
    elapsed: float
    tokens_seen: int
    accuracy: float | None = None


@dataclass
class CheckpointSaved:
    path: str
    step: int
    val_loss: float | None
    kind: str


@dataclass
class SampleText:
    step: int
    prompt: str
    text: str


@dataclass
class Finished:
    status: str  # "finished", "stopped" or "failed"
    step: int
    best_val_loss: float | None
    reason: str = ""


@dataclass
class RunState:
    """The run's state changed: buttons, status bar, status.json and the CLI all read this."""

    state: str  # one of STATES
    step: int
    reason: str = ""


@dataclass
class Marker:
    """Something happened to the run at a step: a live edit (values: {setting: [old, new]}), a rollback,
    an early stop, a pause, a resume from a checkpoint, an extension. Written to metrics.jsonl."""

    step: int
    kind: str  # one of MARKERS
    text: str
    elapsed: float
    values: dict = field(default_factory=dict)


def numeric_fields(record_type) -> list[str]:
    """The columns of a record type that hold numbers (what charts and tables can plot)."""
    return [f.name for f in fields(record_type) if str(f.type).split(" ")[0] in ("int", "float")]
