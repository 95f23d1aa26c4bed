"""A full disk is an error of ours: whatever a run or an export writes (checkpoints, metrics, samples,
status, the token cache, exports), "no space left" becomes one message that names the folder, says how
much space is free and what to do, and the run ends as failed with its last good checkpoint kept."""
from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autogpt_gui.errors import AutoGPTError, CheckpointError, TrainingError
from autogpt_gui.estimates import human_bytes

# torch's zip writer reports a short write as these, not as OSError (inline_container.cc)
_TORCH_SHORT_WRITE = ("unexpected pos", "file write failed", "PytorchStreamWriter failed writing")


class DiskFull(TrainingError, CheckpointError):
    """A write failed for lack of space: the run cannot go on, and a checkpoint was not saved."""


def is_disk_full(err: BaseException) -> bool:
    """Whether err is a write that found no space (ENOSPC, a quota, or torch's short write of a checkpoint)."""
    if isinstance(err, DiskFull):
        return True
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(err, AutoGPTError):  # ours, raised while handling a full disk ("could not write ...")
        return err.__context__ is not None and is_disk_full(err.__context__)
    return isinstance(err, RuntimeError) and any(s in str(err) for s in _TORCH_SHORT_WRITE)


def free_space(folder: Path) -> str:
    """The free space of the file system holding folder, for people ("1.2 MB"), or "unknown"."""
    for place in (folder, *folder.parents):  # the folder itself may not exist yet
        try:
            return human_bytes(shutil.disk_usage(place).free)
        except OSError:
            continue
    return "unknown"


def disk_full(folder: str | Path, what: str) -> DiskFull:
    """The one message for a full disk while writing `what` into folder."""
    folder = Path(folder)
    return DiskFull(f"disk full while writing {what} in {folder} ({free_space(folder)} free): free some space "
                    "there (or move the folder to a larger disk), then resume; the last good checkpoint is kept")


@contextmanager
def writing_into(folder: str | Path, what: str) -> Iterator[None]:
    """Turn a full disk inside the block into DiskFull naming folder; other errors pass unchanged."""
    try:
        yield
    except DiskFull:
        raise
    except (OSError, RuntimeError, AutoGPTError) as err:
        if is_disk_full(err):
            raise disk_full(folder, what) from None
        raise
