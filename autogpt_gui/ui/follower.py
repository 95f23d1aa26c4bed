"""Follow a run that trains in another process (a terminal, torchrun, another machine on a shared file
system) through its run folder, with the same signals as the in-process TrainingWorker.

The run folder is the interface: metrics.jsonl (steps within a second, evaluations, markers),
samples.jsonl, status.json and the checkpoints' index are read as they grow; requests (pause, resume,
stop, save, evaluate, edit) are written to its control.jsonl (engine/run/control.py), which the training
process reads between steps. Closing the window stops only the following, never the run.
"""
from __future__ import annotations

from dataclasses import asdict

from PySide6.QtCore import QTimer

from autogpt_gui.engine.run.checkpoints import CheckpointFolder
from autogpt_gui.engine.run.control import send
from autogpt_gui.engine.run.jsonl import JsonlTail
from autogpt_gui.engine.run.status import RunStarted
from autogpt_gui.engine.train.events import ENDED
from autogpt_gui.ui.run_signals import RunSignals

POLL_MS = 400


class RunFollower(RunSignals):
    """Duck-types TrainingWorker for the window: its signals, request(), generate() and cfg."""

    follows = True  # the window must not stop this run when it closes

    def __init__(self, run, parent=None, process=None):
        super().__init__(parent)
        self.run, self.run_path, self.cfg = run, str(run.path), run.config()
        self.process = process  # the torchrun group this window started, if it did
        self.trainer = None
        self._metrics, self._samples = JsonlTail(run.files.metrics), JsonlTail(run.files.samples)
        self._state: str | None = None
        self._checkpoints: set[str] = set()
        self._timer = QTimer(self, interval=POLL_MS)
        self._timer.timeout.connect(self.poll)

    def start(self) -> None:
        """Announce the run as the window's, replay what it has logged so far, then follow it."""
        st = self.run.read_status()
        self.started.emit(asdict(RunStarted.followed(self.run.path)))
        self.logged.emit(f"following {self.run.id} (pid {st.get('pid')} on {st.get('host')}) through its run folder")
        self.poll()
        self._timer.start()

    def stop_following(self) -> None:
        self._timer.stop()

    def request(self, kind: str, payload=None) -> None:
        send(self.run.path, kind, payload)

    def generate(self, *args) -> bool:
        return False  # the model lives in the other process: the window samples its last checkpoint instead

    def poll(self) -> None:
        steps = []
        for rec in self._metrics.records():
            kind = rec.pop("type", None)
            if kind == "step":
                steps.append(rec)
            elif kind == "eval":
                self.evaluated.emit(rec)
            elif kind == "marker":
                self.marked.emit(rec)
        if steps:
            self.stepped.emit(steps)
        for rec in self._samples.records():
            self.sampled.emit(rec)
        for c in CheckpointFolder(self.run.checkpoints_dir).list() if self.run.checkpoints_dir.exists() else []:
            if c.path not in self._checkpoints:
                self._checkpoints.add(c.path)
                self.checkpoint_saved.emit({"path": c.path, "step": c.step, "val_loss": c.val_loss, "kind": c.kind})
        st = self.run.read_status()
        state = self.run.summary().status  # "interrupted" when the training process is gone
        if state in ("interrupted", "running elsewhere"):
            state = "failed" if state == "interrupted" else st.get("status")
            if state == "failed":
                st["reason"] = "the training process is gone; resume the run to continue it"
        code = self.process.poll() if self.process is not None else None
        if code not in (None, 0) and state not in ENDED:  # the process group died before it could say so
            state, st["reason"] = "failed", f"the training processes exited with code {code}; see the run folder"
        if state and state != self._state:
            self._state = state
            self.state_changed.emit({"state": state, "step": st.get("step", 0), "reason": st.get("reason", "")})
            if state in ENDED:
                self._timer.stop()
                self.finished.emit({"status": state, "step": st.get("step", 0), "reason": st.get("reason", ""),
                                    "best_val_loss": st.get("best_val_loss"), "run_path": self.run_path})
