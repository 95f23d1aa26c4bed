"""A run folder's lock: one process writes a run at a time, and anyone can see which.

`RUN/lock` holds the writer's host, pid and start time. It is created exclusively (O_EXCL), so two
trainers racing for one folder cannot both win; a lock whose writer has died on this host is taken
over; one held on another host is respected (its pid cannot be checked from here). `Run.writing()`
(engine/run/runs.py) is where it is taken and released.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from autogpt_gui.engine.files import pid_alive
from autogpt_gui.engine.run.layout import RunLayout
from autogpt_gui.errors import AutoGPTError


class RunLocked(AutoGPTError):
    """Another process is writing this run folder."""


class RunLock:
    """`lock` in a run folder; acquire() before writing, release() when the run ends."""

    def __init__(self, folder: str | Path):
        self.path = RunLayout(Path(folder)).lock
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
