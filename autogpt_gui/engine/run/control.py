"""The run folder's control file: anyone can ask the process training a run for something.

`RUN/control.jsonl` carries requests (pause, stop, edit, ...) from other processes, read by the trainer
between steps.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from autogpt_gui.engine.run import jsonl
from autogpt_gui.engine.run.layout import CONTROL
from autogpt_gui.engine.train.events import ENDED
from autogpt_gui.engine.train.requests import FROM_OUTSIDE
from autogpt_gui.errors import AutoGPTError

CONTROL_FILE = CONTROL
KINDS = FROM_OUTSIDE  # what another process may ask; "call" (code) and "finish" come only from inside
POLL_SECONDS = 0.25


def send(folder: str | Path, kind: str, payload=None) -> None:
    """Ask the process training `folder` for something (one of KINDS) by appending a line to its control
    file; the trainer reads it between steps (within a quarter second while paused)."""
    if kind not in KINDS:
        raise AutoGPTError(f"unknown request '{kind}'; choose one of {', '.join(KINDS)}", "request")
    jsonl.append(Path(folder) / CONTROL_FILE, [{"kind": kind, "payload": payload, "time": time.time(),
                                               "host": socket.gethostname(), "pid": os.getpid()}])


class ControlFile:
    """A trainer extension that follows RUN/control.jsonl from where it ended when the run started (old
    requests are never replayed) and turns each new line into trainer.request(kind, payload)."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / CONTROL_FILE
        self._thread: threading.Thread | None = None
        self._ended = threading.Event()

    def attach(self, trainer) -> None:
        tail = jsonl.JsonlTail(self.path, at_end=True)

        def follow() -> None:
            while not self._ended.wait(POLL_SECONDS):
                for req in tail.records():
                    try:
                        if req.get("kind") in KINDS:
                            trainer.request(req["kind"], req.get("payload"))
                    except (ValueError, AttributeError):
                        continue  # a damaged request is skipped, the next ones still count

        def on_state(s) -> None:
            if s.state == "running" and self._thread is None:
                self._thread = threading.Thread(target=follow, name="control-file", daemon=True)
                self._thread.start()
            elif s.state in ENDED:
                self._ended.set()

        trainer.on("state", on_state)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, trainer, saved: dict) -> None:
        pass
