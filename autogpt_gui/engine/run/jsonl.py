"""The run folder's JSON-lines files (metrics, samples, control): appended whole lines at a time, read as
they grow by one tailer, which the follower, the control file and the runs listing all use."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path


def append(path: str | Path, records: Iterable[dict], ensure_ascii: bool = True) -> None:
    """Append records as lines in one write: appends from several writers never interleave, and a write
    that fails (a full disk) leaves the file as it was, with no torn line."""
    data = memoryview("".join(json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in records).encode())
    if not data:
        return
    with open(path, "ab", buffering=0) as fh:
        start = fh.seek(0, os.SEEK_END)
        try:
            while data:
                data = data[fh.write(data):]
        except OSError:
            fh.truncate(start)
            raise


class JsonlTail:
    """The complete new records of a growing JSON-lines file since the last read; a line being written
    waits for its end, a damaged line is skipped and the next ones still count."""

    def __init__(self, path: str | Path, at_end: bool = False):
        self.path = Path(path)
        self.offset = self.path.stat().st_size if at_end and self.path.exists() else 0
        self.partial = b""

    def records(self) -> list[dict]:
        """The records completed since the last call (none when the file is missing)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        self.offset += len(data)
        *complete, self.partial = (self.partial + data).split(b"\n")
        out = []
        for raw in complete:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out


def read_records(path: str | Path) -> list[dict]:
    """Every complete record of a JSON-lines file, in order; a torn last line is left out."""
    return JsonlTail(path).records()
