"""Records a Trainer's events in its run folder: steps, evaluations and markers in metrics.jsonl (within a
second, for anyone following), samples in samples.jsonl, and status.json at every change of state.

A full disk fails the run once (DiskFull, naming the folder); what the run's end still has to say is
written if it fits, and never raises, so every listener hears that the run failed."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict

from autogpt_gui.engine.run import jsonl
from autogpt_gui.engine.run.disk import DiskFull, writing_into
from autogpt_gui.engine.run.layout import RunLayout
from autogpt_gui.engine.run.status import Status
from autogpt_gui.engine.train.events import ENDED

FLUSH_SECONDS = 1.0  # a step reaches metrics.jsonl within this long, for anyone following the folder


def record(files: RunLayout, trainer, write_status: Callable[[Status], None],
           on_end: Callable[[str], None]) -> None:
    """Listen to trainer and write what it announces into the folder of `files`; on_end(state) when it ends."""
    pending: list[dict] = []  # step records, written at least once a second: no file is held open between
    guard = threading.Lock()  # state changes announced from the GUI thread flush too
    flushed = [time.monotonic()]
    last = {"accuracy": None}
    full: list[DiskFull] = []  # once the disk is full, the metrics wait for a resume

    def flush() -> None:
        with guard:
            flushed[0] = time.monotonic()
            batch = [] if full else pending[:]
            pending.clear()
        try:
            with writing_into(files.root, files.metrics.name):
                jsonl.append(files.metrics, batch)
        except DiskFull as err:
            full.append(err)
            raise

    def status(state: str, reason: str = "") -> None:
        best = trainer.best_val_loss if trainer.best_val_loss != float("inf") else None
        with writing_into(files.root, files.status.name):
            write_status(Status(state, trainer.step, trainer.max_steps, best, reason, trainer.precision,
                                last["accuracy"]))

    def on_step(m) -> None:
        with guard:
            pending.append({"type": "step", **asdict(m)})
        if len(pending) >= 200 or time.monotonic() - flushed[0] >= FLUSH_SECONDS:
            flush()

    def on_eval(m) -> None:
        last["accuracy"] = m.accuracy
        with guard:
            pending.append({"type": "eval", **asdict(m)})
        flush()
        status(trainer.state)

    def on_sample(s) -> None:
        with writing_into(files.root, files.samples.name):
            jsonl.append(files.samples, [asdict(s)], ensure_ascii=False)

    def on_marker(m) -> None:
        with guard:
            pending.append({"type": "marker", **asdict(m)})
        flush()

    def on_checkpoint(c) -> None:
        flush()
        status(trainer.state)

    def on_state(s) -> None:
        if s.state not in ENDED:
            flush()
            status(s.state, s.reason)
            return
        try:
            flush()
        except DiskFull:
            pass  # the run failed for it already; its end is still recorded below, if it fits
        try:
            status(s.state, s.reason)
        except DiskFull:
            pass
        finally:
            on_end(s.state)

    for event, fn in (("step", on_step), ("eval", on_eval), ("sample", on_sample),
                      ("checkpoint", on_checkpoint), ("state", on_state), ("marker", on_marker)):
        trainer.on(event, fn)
    status(trainer.state)
