"""Checkpoints: atomic writes, safe loads (weights_only), retention that never drops best or last.

torch is imported inside the functions that need it, so the window can list checkpoints before
torch has loaded.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import random
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autogpt_gui.errors import CheckpointError

FORMAT = "autogpt-gui-checkpoint"
VERSION = 1


@dataclass
class CheckpointInfo:
    """What the checkpoints table shows of one file."""

    path: str
    step: int
    val_loss: float | None
    time: float
    size: int
    kind: str  # "step", "best", "last" or "stop"
    is_best: bool = False


# ---- writing ---------------------------------------------------------------------------------
def save_checkpoint(payload: dict, path: str | Path) -> None:
    """Write payload to path atomically: a temp file, flushed and fsynced, then renamed.

    On failure (disk full, interrupted) the temp file is removed and whatever was at `path`
    before is untouched.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as fh:
            torch.save({"format": FORMAT, "version": VERSION, **payload}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            if err.errno == errno.ENOSPC:
                raise CheckpointError(f"disk full while saving {path.name}; the previous checkpoint is kept. "
                                      "Free some space and save again", "checkpoint") from None
            raise CheckpointError(f"could not save {path}: {err.strerror or err}", "checkpoint") from None
        if isinstance(err, RuntimeError) and "write" in str(err).lower():
            raise CheckpointError(f"could not save {path} ({err}); the previous checkpoint is kept",
                                  "checkpoint") from None
        raise


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Point dst at src's bytes (hard link, else copy), replacing dst atomically."""
    tmp = temp_path(dst)
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        import shutil

        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# ---- temp files of writers that died --------------------------------------------------------
TEMP_NAME = re.compile(r"^\..+?\.(\d+)(?:\.\d+)?\.tmp$")  # .NAME.PID.tmp or .NAME.PID.THREAD.tmp


def temp_path(path: Path) -> Path:
    """Where a writer of `path` puts its bytes before the rename; names the writer's pid."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def pid_alive(pid) -> bool:
    """Whether a process with this id runs on this machine (a permission error means it does)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:
        return True
    return True


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove the temp files in folder whose writer is no longer alive; return what was removed."""
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        found = TEMP_NAME.match(p.name)
        if found and not pid_alive(int(found.group(1))):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


# ---- reading ---------------------------------------------------------------------------------
def check_regular_file(path: Path, field: str = "checkpoint") -> None:
    """Raise a clear error unless path is an existing regular file (not a folder, device or pipe)."""
    if not path.exists():
        hint = " (a link to nothing)" if path.is_symlink() else ""
        raise CheckpointError(f"{path} does not exist{hint}; choose a checkpoint file (.pt)", field)
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "a device, pipe or socket"
        raise CheckpointError(f"{path} is not a regular file (it is {kind}); choose a checkpoint file (.pt)", field)


def load_tensors_safely(path: Path, field: str = "checkpoint", map_location="cpu"):
    """torch.load with weights_only: tensors and plain data; a pickle that asks to run code is refused."""
    import torch

    check_regular_file(path, field)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found:
            raise CheckpointError(
                f"{path.name} was refused: it asks to run {found.group(1)}, and loading it could run code on "
                "this computer. Only tensors and plain data are accepted", field) from None
        raise CheckpointError(f"{path.name} is not a readable checkpoint (damaged or another format)", field) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"{path.name} is not a readable checkpoint (truncated or damaged: "
                              f"{_first_line(err)})", field) from None


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load one of our checkpoints without running any code from it, or raise CheckpointError."""
    path = Path(path)
    data = load_tensors_safely(path, "checkpoint", map_location)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not an autogpt-gui checkpoint", "checkpoint")
    if data.get("version", 0) > VERSION:
        raise CheckpointError(f"{path.name} was written by a newer autogpt-gui; update the app", "checkpoint")
    return data


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


# ---- random state ----------------------------------------------------------------------------
def capture_rng() -> dict:
    """Python, NumPy, torch CPU and CUDA random states, as plain data and tensors."""
    import torch

    py = random.getstate()
    np_state: tuple = np.random.get_state(legacy=True)  # type: ignore[assignment]
    state: dict = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- a folder of checkpoints with retention ------------------------------------------------
class CheckpointFolder:
    """`checkpoints/` of a run: step-N.pt files (keep the last K), best.pt and last.pt, an index."""

    def __init__(self, folder: str | Path, keep_last: int = 3):
        self.folder = Path(folder)
        self.keep_last = max(1, keep_last)

    @property
    def index_path(self) -> Path:
        return self.folder / "index.json"

    def _read_index(self) -> dict:
        try:
            return json.loads(self.index_path.read_text())
        except (OSError, ValueError):
            return {}

    def _write_index(self, index: dict) -> None:
        tmp = temp_path(self.index_path)
        tmp.write_text(json.dumps(index, indent=1))
        os.replace(tmp, self.index_path)

    def save(self, payload: dict, step: int, val_loss: float | None, is_best: bool, kind: str = "step") -> Path:
        """Save a step checkpoint, update last (and best), and prune old step files."""
        path = self.folder / f"step-{step:08d}.pt"
        save_checkpoint(payload, path)
        index = self._read_index()
        entry = {"step": step, "val_loss": val_loss, "time": time.time(), "kind": kind}
        index[path.name] = entry
        _link_or_copy(path, self.folder / "last.pt")
        index["last.pt"] = {**entry, "kind": "last"}
        if is_best:
            _link_or_copy(path, self.folder / "best.pt")
            index["best.pt"] = {**entry, "kind": "best"}
        self._prune(index)
        self._write_index(index)
        return path

    def _prune(self, index: dict) -> None:
        steps = sorted(p for p in self.folder.glob("step-*.pt"))
        for old in steps[: -self.keep_last]:
            old.unlink(missing_ok=True)
            index.pop(old.name, None)

    def delete(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)
        index = self._read_index()
        index.pop(name, None)
        self._write_index(index)

    def list(self) -> list[CheckpointInfo]:
        """Checkpoints on disk, newest step first; best.pt flagged."""
        index = self._read_index()
        best = index.get("best.pt", {}).get("step")
        out = []
        for p in self.folder.glob("*.pt"):
            meta = index.get(p.name, {})
            st = p.stat()
            step = meta.get("step", _step_of(p.name))
            out.append(CheckpointInfo(str(p), step, meta.get("val_loss"), meta.get("time", st.st_mtime),
                                      st.st_size, meta.get("kind", "step"), p.name == "best.pt" or
                                      (best is not None and step == best)))
        order = {"last": 0, "best": 1}
        return sorted(out, key=lambda c: (-c.step, order.get(c.kind, 2)))


def _step_of(name: str) -> int:
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else -1
