"""The run folder's lock and control file: one process writes a run at a time, anyone can see which,
and anyone can ask it for something.

`RUN/lock` holds the writer's host, pid and start time. It is created exclusively (O_EXCL), so two
trainers racing for one folder cannot both win; a lock whose writer has died on this host is taken
over; one held on another host is respected (its pid cannot be checked from here). `RUN/control.jsonl`
carries requests (pause, stop, edit, ...) from other processes, read by the trainer between steps.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

from autogpt_gui.engine.files import pid_alive
from autogpt_gui.engine.train.events import ENDED
from autogpt_gui.engine.train.requests import FROM_OUTSIDE
from autogpt_gui.errors import AutoGPTError


class RunLocked(AutoGPTError):
    """Another process is writing this run folder."""


class RunLock:
    """`lock` in a run folder; acquire() before writing, release() when the run ends."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / "lock"
        self.held = False

    def holder(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # being written this instant, or damaged: treated as held by no one alive

    def acquire(self) -> RunLock:
        """Take the lock (again, if this object already holds it), or raise RunLocked naming its holder."""
        if self.held:
            return self
        me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder is None:
                    continue  # released between our two looks
                if _alive(holder):
                    since = time.strftime("%Y-%m-%d %H:%M", time.localtime(holder.get("since", 0)))
                    raise RunLocked(f"{self.path.parent.name} is being trained by process {holder.get('pid')} on "
                                    f"{holder.get('host')} (since {since}); stop that run first, or open it to "
                                    f"watch. If that process is gone for good, delete {self.path}", "run") from None
                self.path.unlink(missing_ok=True)  # its writer died: the folder is free
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self.held = True
            return self
        raise RunLocked(f"could not take {self.path}; another process keeps taking it", "run")

    def release(self) -> None:
        """Remove the lock if it is ours (a lock taken over by someone else stays theirs)."""
        if not self.held:
            return
        self.held = False
        holder = self.holder()
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)


def _alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return bool(holder.get("host"))  # another machine's writer: assume it is alive
    return pid_alive(holder.get("pid"))


# ---- the control file: requests from outside the training process ------------------------------------
CONTROL_FILE = "control.jsonl"
KINDS = FROM_OUTSIDE  # what another process may ask; "call" (code) and "finish" come only from inside
POLL_SECONDS = 0.25


def send(folder: str | Path, kind: str, payload=None) -> None:
    """Ask the process training `folder` for something (one of KINDS) by appending a line to its control
    file; the trainer reads it between steps (within a quarter second while paused)."""
    if kind not in KINDS:
        raise AutoGPTError(f"unknown request '{kind}'; choose one of {', '.join(KINDS)}", "request")
    line = json.dumps({"kind": kind, "payload": payload, "time": time.time(), "host": socket.gethostname(),
                       "pid": os.getpid()})
    with open(Path(folder) / CONTROL_FILE, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")  # one write of one line: appends from several writers never interleave


class ControlFile:
    """A trainer extension that follows RUN/control.jsonl from where it ended when the run started (old
    requests are never replayed) and turns each new line into trainer.request(kind, payload)."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / CONTROL_FILE
        self._thread: threading.Thread | None = None
        self._ended = threading.Event()

    def attach(self, trainer) -> None:
        offset = self.path.stat().st_size if self.path.exists() else 0

        def follow() -> None:
            nonlocal offset
            partial = b""
            while not self._ended.wait(POLL_SECONDS):
                try:
                    with open(self.path, "rb") as fh:
                        fh.seek(offset)
                        data = fh.read()
                except OSError:
                    continue
                offset += len(data)
                *lines, partial = (partial + data).split(b"\n")
                for raw in lines:
                    try:
                        req = json.loads(raw)
                        if req.get("kind") in KINDS:
                            trainer.request(req["kind"], req.get("payload"))
                    except (ValueError, AttributeError):
                        continue  # a damaged line is skipped, the next ones still count

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
