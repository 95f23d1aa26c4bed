"""A run folder: config, tokenizer, metrics log, samples, status and checkpoints; and the list of runs."""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from autogpt_gui.config import RunConfig
from autogpt_gui.engine.files import check_regular_file, pid_alive, remove_stale_temp_files
from autogpt_gui.engine.run import recorder
from autogpt_gui.engine.run.checkpoints import CheckpointFolder
from autogpt_gui.engine.run.jsonl import read_records
from autogpt_gui.engine.run.layout import CHECKPOINTS, RunLayout, is_run_folder
from autogpt_gui.engine.run.lock import RunLock
from autogpt_gui.engine.run.status import Status, describe_failure, read_status, write_status
from autogpt_gui.errors import AutoGPTError, Cancelled

LIVE = ("idle", "running", "pausing", "paused", "stopping")  # states of a run whose process is at work
FLUSH_SECONDS = recorder.FLUSH_SECONDS


@dataclass
class RunSummary:
    """One line of the runs list."""

    id: str
    path: str
    name: str
    created: float
    step: int
    max_steps: int | None
    best_val_loss: float | None
    status: str  # a state of engine.events.STATES, "interrupted" (its process died), "running elsewhere" or "new"
    reason: str = ""
    precision: str | None = None
    accuracy: float | None = None  # held-out exact match at the last evaluation (task data)
    parent: str | None = None  # a branch: the run it forked from, and the step
    fork_step: int | None = None


class Run:
    """The folder of one training run, and a listener that records a Trainer's events in it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.files = RunLayout(self.path)
        self.checkpoints_dir = self.files.checkpoints
        self.lock = RunLock(self.path)
        self._writers = 0  # blocks inside writing() now
        self._recording = False  # a trainer records into this folder and has not ended
        self._ended = False  # ...and it announced its end (status.json has it)
        self._guard = threading.Lock()

    @classmethod
    def create(cls, cfg: RunConfig, root: Path) -> Run:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", cfg.name or cfg.data.source.replace("task:", "")).strip("-")[:40]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = root / f"{stamp}-{slug or 'run'}"
        n = 1
        while path.exists():
            n += 1
            path = root / f"{stamp}-{slug or 'run'}-{n}"
        path.mkdir(parents=True)
        run = cls(path)
        cfg.save(run.files.config)
        run.write_status("new", 0, cfg.train.max_steps or None, None)
        return run

    @classmethod
    def prepare(cls, cfg: RunConfig, folder: str | Path) -> Run:
        """A run folder for cfg at `folder` (new or empty), as a run has it before its first step."""
        folder = Path(folder)
        if folder.exists() and any(folder.iterdir()):
            raise AutoGPTError(f"{folder} is not empty; choose a new folder for --out", "--out")
        folder.mkdir(parents=True, exist_ok=True)
        run = cls(folder)
        cfg.save(run.files.config)
        return run

    @property
    def id(self) -> str:
        return self.path.name

    def config(self) -> RunConfig:
        return RunConfig.load(self.files.config)

    def checkpoint_folder(self, keep_last: int = 3) -> CheckpointFolder:
        return CheckpointFolder(self.checkpoints_dir, keep_last)

    # ---- status ------------------------------------------------------------------------------
    def read_status(self) -> dict:
        """status.json as a dict ({} before there is one)."""
        return read_status(self.path)

    def write_status(self, status: str, step: int, max_steps: int | None, best: float | None, reason: str = "",
                     precision: str | None = None, accuracy: float | None = None) -> None:
        """status.json, replaced atomically (a temp file per writer, then a rename)."""
        write_status(self.path, Status(status, step, max_steps, best, reason, precision, accuracy))

    # ---- who writes the folder ---------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[Run]:
        """Hold the folder's lock for the block (refused, naming the holder, if another process writes it).
        It goes when the outermost block ends, or, while a trainer records here, when that run ends; a failure
        in the block is recorded in status.json as the run's end."""
        self.lock.acquire()
        with self._guard:
            self._writers += 1
        try:
            yield self
        except BaseException as err:
            if not isinstance(err, Cancelled) and not self._ended:
                self._record_failure(describe_failure(err))
            self._recording = False
            raise
        finally:
            with self._guard:
                self._writers -= 1
            self._release_if_free()

    def _release_if_free(self) -> None:
        with self._guard:
            free = self._writers == 0 and not self._recording
        if free:
            self.lock.release()

    def _record_failure(self, reason: str) -> None:
        st = self.read_status()
        self.write_status("failed", int(st.get("step", 0)), st.get("max_steps"), st.get("best_val_loss"), reason,
                          st.get("precision"), st.get("accuracy"))

    def summary(self) -> RunSummary:
        """The run as the runs list shows it; a live state whose process is gone reads "interrupted"."""
        self.remove_stale_files()
        st = self.read_status()
        status = st.get("status", "new")
        if status in LIVE and st.get("host", socket.gethostname()) != socket.gethostname():
            status = "running elsewhere"  # another machine's process: its pid means nothing here
        elif status in LIVE and not pid_alive(st.get("pid")):
            status = "interrupted"
        try:
            name = self.config().name or self.id
        except Exception:  # a damaged config still lists the run
            name = self.id
        fork = self.branch() or {}
        return RunSummary(self.id, str(self.path), name, self.files.config.stat().st_mtime,
                          int(st.get("step", 0)), st.get("max_steps"), st.get("best_val_loss"), status,
                          st.get("reason", ""), st.get("precision"), st.get("accuracy"), fork.get("parent_id"),
                          fork.get("step"))

    def remove_stale_files(self) -> list[Path]:
        """Delete temp files left by writers that died mid-write (kill -9); a live writer's are kept."""
        return remove_stale_temp_files(self.path) + remove_stale_temp_files(self.checkpoints_dir)

    def write_branch(self, parent: Run, checkpoint: Path, step: int) -> None:
        """Record that this run starts from `parent`'s checkpoint of `step` (a branch)."""
        self.files.branch.write_text(json.dumps({
            "parent": str(parent.path), "parent_id": parent.id, "step": step, "checkpoint": str(checkpoint)}),
            encoding="utf-8")

    def branch(self) -> dict | None:
        """{"parent", "parent_id", "step", "checkpoint"} when this run was branched from another, else None."""
        try:
            data = json.loads(self.files.branch.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    def has_checkpoint(self) -> bool:
        return self.files.last.is_file()

    def reset(self) -> None:
        """Forget a run that never saved a checkpoint, keeping its folder and configuration: it starts again."""
        self.remove_stale_files()
        for path in (self.files.metrics, self.files.samples):
            path.unlink(missing_ok=True)
        self.write_status("new", 0, None, None, "started again from step 0")

    # ---- recording a trainer -------------------------------------------------------------
    def attach(self, trainer) -> None:
        """Append the trainer's steps, evals and samples to this folder; keep status.json current."""
        self._recording, self._ended = True, False

        def on_end(state: str) -> None:
            self._recording, self._ended = False, True
            self._release_if_free()

        recorder.record(self.files, trainer, lambda st: write_status(self.path, st), on_end)
        self.remove_stale_files()

    def read_metrics(self) -> tuple[list[dict], list[dict]]:
        """(step records, eval records) from metrics.jsonl; a torn last line is skipped."""
        steps: list[dict] = []
        evals: list[dict] = []
        for rec in read_records(self.files.metrics):
            if rec.get("type") == "step" and steps and rec["step"] <= steps[-1]["step"]:
                # a resumed run rewrites the steps after its checkpoint: keep the newer ones
                steps = [s for s in steps if s["step"] < rec["step"]]
                evals = [e for e in evals if e["step"] < rec["step"]]
            if rec.get("type") in ("step", "eval"):
                (steps if rec["type"] == "step" else evals).append(rec)
        return steps, evals

    def edited_config(self) -> RunConfig:
        """The configuration as the run last trained with it: config.toml with the live edits of its markers."""
        cfg = self.config()
        for m in self.read_markers():
            if m.get("kind") == "edit":
                for key, change in (m.get("values") or {}).items():
                    section, _, name = key.partition(".")
                    if hasattr(cfg, section) and hasattr(getattr(cfg, section), name):
                        setattr(getattr(cfg, section), name, change[1])
        return cfg

    def read_markers(self) -> list[dict]:
        """The Marker records of metrics.jsonl (edits, rollbacks, early stop, pauses, resumes), in order."""
        out: list[dict] = []
        for rec in read_records(self.files.metrics):
            if rec.get("type") == "marker":
                if rec.get("kind") == "resumed":  # what the old run did after that checkpoint is gone
                    out = [m for m in out if m["step"] <= rec["step"]]
                out.append(rec)
        return out

    def read_samples(self) -> list[dict]:
        """The samples the run generated, in order."""
        return read_records(self.files.samples)


def locate_resume(target: str | Path) -> tuple[Run, Path | None]:
    """The run and checkpoint that `resume TARGET` continues: a run folder (its last.pt, or None when it
    has none yet) or a checkpoint file inside a run's checkpoints folder."""
    path = Path(target).expanduser()
    if path.is_dir():
        run = Run(path)
        if not run.files.config.is_file():
            raise AutoGPTError(f"{path} is not a run folder (it has no config.toml); give a run folder or a "
                               "checkpoint file", "run")
        run.remove_stale_files()
        return run, (run.files.last if run.has_checkpoint() else None)
    check_regular_file(path, "run")
    real = path.resolve()
    if real.parent.name != CHECKPOINTS or not is_run_folder(real.parent.parent):
        raise AutoGPTError(f"{path} is not inside a run's checkpoints folder, so its configuration cannot be "
                           "found; give the run folder, or a file in RUN/checkpoints/", "run")
    run = Run(real.parent.parent)
    run.remove_stale_files()
    return run, real


def list_runs(root: Path) -> list[RunSummary]:
    """Every run under root, newest first."""
    out = []
    if root.is_dir():
        for p in root.iterdir():
            if is_run_folder(p):
                out.append(Run(p).summary())
    return sorted(out, key=lambda r: r.id, reverse=True)
