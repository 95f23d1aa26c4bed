"""Checkpoints: atomic writes, safe loads (weights_only), retention that never drops best or last.

torch is imported inside the functions that need it, so the window can list checkpoints before
torch has loaded.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from autogpt_gui.engine.files import fsync_dir, load_tensors_safely, temp_path
from autogpt_gui.engine.run.disk import disk_full, is_disk_full, writing_into
from autogpt_gui.engine.run.layout import BEST, LAST
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
        fsync_dir(path.parent)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if is_disk_full(err):
            raise disk_full(path.parent, f"the checkpoint {path.name}") from None
        if isinstance(err, OSError):
            raise CheckpointError(f"could not save {path}: {err.strerror or err}", "checkpoint") from None
        if isinstance(err, RuntimeError) and "write" in str(err).lower():
            raise CheckpointError(f"could not save {path} ({err}); the previous checkpoint is kept",
                                  "checkpoint") from None
        raise


def _link_or_copy(src: Path, dst: Path) -> None:
    """Point dst at src's bytes (hard link, else copy), replacing dst atomically."""
    tmp = temp_path(dst)
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        import shutil

        try:
            shutil.copyfile(src, tmp)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, dst)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load one of our checkpoints without running any code from it, or raise CheckpointError."""
    path = Path(path)
    data = load_tensors_safely(path, "checkpoint", map_location)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not an autogpt-gui checkpoint", "checkpoint")
    if data.get("version", 0) > VERSION:
        raise CheckpointError(f"{path.name} was written by a newer autogpt-gui; update the app", "checkpoint")
    return data


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
        try:
            tmp.write_text(json.dumps(index, indent=1))
            os.replace(tmp, self.index_path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise

    def save(self, payload: dict, step: int, val_loss: float | None, is_best: bool, kind: str = "step") -> Path:
        """Save a step checkpoint, update last (and best), and prune old step files."""
        path = self.folder / f"step-{step:08d}.pt"
        save_checkpoint(payload, path)
        with writing_into(self.folder, "the checkpoints' index"):
            return self._record(path, step, val_loss, is_best, kind)

    def _record(self, path: Path, step: int, val_loss: float | None, is_best: bool, kind: str) -> Path:
        index = self._read_index()
        entry = {"step": step, "val_loss": val_loss, "time": time.time(), "kind": kind}
        index[path.name] = entry
        _link_or_copy(path, self.folder / LAST)
        index[LAST] = {**entry, "kind": "last"}
        if is_best:
            _link_or_copy(path, self.folder / BEST)
            index[BEST] = {**entry, "kind": "best"}
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
        best = index.get(BEST, {}).get("step")
        out = []
        for p in self.folder.glob("*.pt"):
            meta = index.get(p.name, {})
            st = p.stat()
            step = meta.get("step", _step_of(p.name))
            out.append(CheckpointInfo(str(p), step, meta.get("val_loss"), meta.get("time", st.st_mtime),
                                      st.st_size, meta.get("kind", "step"), p.name == BEST or
                                      (best is not None and step == best)))
        order = {"last": 0, "best": 1}
        return sorted(out, key=lambda c: (-c.step, order.get(c.kind, 2)))


def _step_of(name: str) -> int:
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else -1
