"""What a run says about itself: status.json (one writer, replaced atomically) and the record of its start,
which the window's worker and a follower of the folder both announce."""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autogpt_gui.engine.run.layout import RunLayout
from autogpt_gui.errors import AutoGPTError


@dataclass
class Status:
    """status.json: the run's state, progress and writer (a host, so another machine's run reads "running
    elsewhere" rather than "interrupted")."""

    status: str
    step: int
    max_steps: int | None
    best_val_loss: float | None
    reason: str = ""
    precision: str | None = None
    accuracy: float | None = None
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)
    ranks: int = field(default_factory=lambda: int(os.environ.get("WORLD_SIZE", 1)))  # torchrun's job size
    updated: float = field(default_factory=time.time)


def write_status(folder: str | Path, status: Status) -> None:
    """Replace folder's status.json atomically (a temp file per writer thread, then a rename)."""
    path = RunLayout(Path(folder)).status
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(asdict(status)))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def read_status(folder: str | Path) -> dict:
    """status.json as a dict; {} when it is missing or being replaced this instant."""
    try:
        data = json.loads(RunLayout(Path(folder)).status.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


@dataclass
class RunStarted:
    """A run began (or a window began following one): what the status bar, the charts and the title show."""

    run_path: str
    run_id: str
    device: str
    precision: str | None
    precision_reason: str
    params: int
    max_steps: int | None
    step: int
    epoch: int
    tokens_seen: int
    train_tokens: int
    val_tokens: int
    vocab_size: int | None
    source: str
    tokens_per_step: int
    resumed: bool
    follows: bool = False  # announced by a follower: another process trains the run

    @classmethod
    def followed(cls, folder: str | Path) -> RunStarted:
        """The start of a run that another process trains, as far as its status.json tells."""
        path = Path(folder)
        st = read_status(path)
        return cls(str(path), path.name, st.get("host", "another process"), st.get("precision"),
                   "chosen by the training process", 0, st.get("max_steps"), st.get("step", 0), 0, 0, 0, 0, None,
                   "followed run folder", 0, False, True)


def describe_failure(err: BaseException) -> str:
    """The reason status.json (and the window) give for a run that ended by err: ours as they are, others
    in one plain sentence."""
    if isinstance(err, AutoGPTError):
        return str(err.message if not hasattr(err, "problems") else err)
    if isinstance(err, MemoryError):
        return "the computer ran out of memory; use a smaller model, batch or context"
    return f"unexpected error: {type(err).__name__}: {err}"
