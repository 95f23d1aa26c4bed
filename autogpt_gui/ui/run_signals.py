"""The signals of a run, declared once: the in-process TrainingWorker and the RunFollower of a run folder
both emit them, with the same payloads (the engine's event records as dicts), so the panels never branch
on where a run lives."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class RunSignals(QObject):
    """What a run announces to the window."""

    data_progressed = Signal(str, float)  # tokenizing: (phase, fraction)
    started = Signal(dict)  # engine.run.status.RunStarted
    stepped = Signal(list)  # engine.train.events.StepMetrics, coalesced
    evaluated = Signal(dict)  # EvalMetrics
    checkpoint_saved = Signal(dict)  # CheckpointSaved
    sampled = Signal(dict)  # SampleText
    marked = Signal(dict)  # Marker: edits, rollbacks, early stop, ...
    logged = Signal(str)
    state_changed = Signal(dict)  # RunState: the one source of the run's state
    finished = Signal(dict)  # Finished, with run_path
    errored = Signal(str, str)  # (message, field)
    text_generated = Signal(str)
    generation_done = Signal(str)
