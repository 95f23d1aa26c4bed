"""A run folder: config, tokenizer, metrics log, samples, status and checkpoints; and the list of runs."""
from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from autogpt_gui.config import RunConfig
from autogpt_gui.engine.files import check_regular_file, pid_alive, remove_stale_temp_files
from autogpt_gui.engine.run.checkpoints import CheckpointFolder
from autogpt_gui.engine.run.control import RunLock
from autogpt_gui.engine.train.events import ENDED
from autogpt_gui.errors import AutoGPTError

LIVE = ("idle", "running", "pausing", "paused", "stopping")  # states of a run whose process is at work
FLUSH_SECONDS = 1.0  # a step reaches metrics.jsonl within this long, for anyone following the folder


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
        self.checkpoints_dir = self.path / "checkpoints"
        self.lock = RunLock(self.path)

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
        cfg.save(run.path / "config.toml")
        run.write_status("new", 0, cfg.train.max_steps or None, None)
        return run

    @property
    def id(self) -> str:
        return self.path.name

    def config(self) -> RunConfig:
        return RunConfig.load(self.path / "config.toml")

    def checkpoint_folder(self, keep_last: int = 3) -> CheckpointFolder:
        return CheckpointFolder(self.checkpoints_dir, keep_last)

    # ---- status ------------------------------------------------------------------------------
    def read_status(self) -> dict:
        try:
            return json.loads((self.path / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def write_status(self, status: str, step: int, max_steps: int | None, best: float | None, reason: str = "",
                     precision: str | None = None, accuracy: float | None = None) -> None:
        """status.json, replaced atomically (a temp file per writer, then a rename)."""
        data = {"status": status, "pid": os.getpid(), "host": socket.gethostname(), "step": step, "max_steps": max_steps,
                "best_val_loss": best, "reason": reason, "precision": precision, "accuracy": accuracy,
                "ranks": int(os.environ.get("WORLD_SIZE", 1)), "updated": time.time()}  # torchrun's job size
        tmp = self.path / f".status.json.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path / "status.json")

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
        return RunSummary(self.id, str(self.path), name, (self.path / "config.toml").stat().st_mtime,
                          int(st.get("step", 0)), st.get("max_steps"), st.get("best_val_loss"), status,
                          st.get("reason", ""), st.get("precision"), st.get("accuracy"), fork.get("parent_id"),
                          fork.get("step"))

    def remove_stale_files(self) -> list[Path]:
        """Delete temp files left by writers that died mid-write (kill -9); a live writer's are kept."""
        return remove_stale_temp_files(self.path) + remove_stale_temp_files(self.checkpoints_dir)

    def write_branch(self, parent: Run, checkpoint: Path, step: int) -> None:
        """Record that this run starts from `parent`'s checkpoint of `step` (a branch)."""
        (self.path / "branch.json").write_text(json.dumps({
            "parent": str(parent.path), "parent_id": parent.id, "step": step, "checkpoint": str(checkpoint)}),
            encoding="utf-8")

    def branch(self) -> dict | None:
        """{"parent", "parent_id", "step", "checkpoint"} when this run was branched from another, else None."""
        try:
            data = json.loads((self.path / "branch.json").read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    def has_checkpoint(self) -> bool:
        return (self.checkpoints_dir / "last.pt").is_file()

    def reset(self) -> None:
        """Forget a run that never saved a checkpoint, keeping its folder and configuration: it starts again."""
        self.remove_stale_files()
        for name in ("metrics.jsonl", "samples.jsonl"):
            (self.path / name).unlink(missing_ok=True)
        self.write_status("new", 0, None, None, "started again from step 0")

    # ---- recording a trainer -------------------------------------------------------------
    def attach(self, trainer) -> None:
        """Append the trainer's steps, evals and samples to this folder; keep status.json current."""
        pending: list[str] = []  # step lines, written at least once a second: no file is held open between
        guard = threading.Lock()  # state changes announced from the GUI thread flush too
        flushed = [time.monotonic()]

        def flush():
            with guard:
                flushed[0] = time.monotonic()
                if pending:
                    with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as fh:
                        fh.writelines(pending)
                    pending.clear()

        samples_path = self.path / "samples.jsonl"

        def best():
            b = trainer.best_val_loss
            return b if b != float("inf") else None

        def on_step(m):
            with guard:
                pending.append(json.dumps({"type": "step", **asdict(m)}) + "\n")
            if len(pending) >= 200 or time.monotonic() - flushed[0] >= FLUSH_SECONDS:
                flush()

        last = {"accuracy": None}

        def status(state: str, reason: str = "") -> None:
            self.write_status(state, trainer.step, trainer.max_steps, best(), reason, trainer.precision,
                              last["accuracy"])

        def on_eval(m):
            last["accuracy"] = m.accuracy
            pending.append(json.dumps({"type": "eval", **asdict(m)}) + "\n")
            flush()
            status(trainer.state)

        def on_sample(s):
            with open(samples_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(s), ensure_ascii=False) + "\n")

        def on_marker(m):
            with guard:
                pending.append(json.dumps({"type": "marker", **asdict(m)}) + "\n")
            flush()

        def on_checkpoint(c):
            flush()
            status(trainer.state)

        def on_state(s):
            flush()
            status(s.state, s.reason)
            if s.state in ENDED:
                self.lock.release()

        for event, fn in (("step", on_step), ("eval", on_eval), ("sample", on_sample),
                          ("checkpoint", on_checkpoint), ("state", on_state), ("marker", on_marker)):
            trainer.on(event, fn)
        self.remove_stale_files()
        status(trainer.state)

    def read_metrics(self) -> tuple[list[dict], list[dict]]:
        """(step records, eval records) from metrics.jsonl; a torn last line is skipped."""
        steps: list[dict] = []
        evals: list[dict] = []
        try:
            with open(self.path / "metrics.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("type") == "step" and steps and rec["step"] <= steps[-1]["step"]:
                        # a resumed run rewrites the steps after its checkpoint: keep the newer ones
                        steps = [s for s in steps if s["step"] < rec["step"]]
                        evals = [e for e in evals if e["step"] < rec["step"]]
                    if rec.get("type") in ("step", "eval"):
                        (steps if rec["type"] == "step" else evals).append(rec)
        except OSError:
            pass
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
        try:
            with open(self.path / "metrics.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    if '"marker"' in line:
                        try:
                            rec = json.loads(line)
                        except ValueError:
                            continue
                        if rec.get("type") == "marker":
                            if rec.get("kind") == "resumed":  # what the old run did after that checkpoint is gone
                                out = [m for m in out if m["step"] <= rec["step"]]
                            out.append(rec)
        except OSError:
            pass
        return out

    def read_samples(self) -> list[dict]:
        out = []
        try:
            with open(self.path / "samples.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        continue
        except OSError:
            pass
        return out


def locate_resume(target: str | Path) -> tuple[Run, Path | None]:
    """The run and checkpoint that `resume TARGET` continues: a run folder (its last.pt, or None when it
    has none yet) or a checkpoint file inside a run's checkpoints folder."""
    path = Path(target).expanduser()
    if path.is_dir():
        run = Run(path)
        if not (path / "config.toml").is_file():
            raise AutoGPTError(f"{path} is not a run folder (it has no config.toml); give a run folder or a "
                               "checkpoint file", "run")
        run.remove_stale_files()
        return run, (run.checkpoints_dir / "last.pt" if run.has_checkpoint() else None)
    check_regular_file(path, "run")
    real = path.resolve()
    if real.parent.name != "checkpoints" or not (real.parent.parent / "config.toml").is_file():
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
            if (p / "config.toml").exists():
                out.append(Run(p).summary())
    return sorted(out, key=lambda r: r.id, reverse=True)
