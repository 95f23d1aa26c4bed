"""Files that must not be half-written or trusted: atomic renames, temp files of writers that died, and
loading tensors without running code. The bottom of the engine: the model and the run folder both use it.
"""
from __future__ import annotations

import os
import pickle
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autogpt_gui.errors import CheckpointError


def fsync_dir(folder: Path) -> None:
    """Make a rename inside folder durable (where the platform allows opening a folder)."""
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
                              f"{first_line(err)})", field) from None


def first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


@contextmanager
def folder_in_place(folder: Path, prefix: str = ".tmp-") -> Iterator[Path]:
    """A temporary folder beside `folder`, filled in the with-block, then renamed into place; removed on any
    failure. Where another process put the same folder there first, theirs stands."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=prefix))
    try:
        yield tmp
        try:
            os.replace(tmp, folder)
        except OSError:  # another process cached the same data first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
