"""Run controls: Start, Pause/Resume, Stop, Save now, Evaluate now; a status line and progress bar."""
from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from autogpt_gui.progress import format_duration


class RunControls(QWidget):
    """Buttons that ask for things (signals) and a status line that shows how the run goes."""

    start_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()
    save_requested = Signal()
    evaluate_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.start = self._button("Start", "Ctrl+Return", "Start training with this configuration")
        self.pause = self._button("Pause", "Ctrl+P", "Pause between two steps; Resume continues")
        self.stop = self._button("Stop", "Ctrl+.", "Stop the run and save a checkpoint")
        self.save = self._button("Save checkpoint", "Ctrl+S", "Save a checkpoint now")
        self.evaluate = self._button("Evaluate now", "Ctrl+E", "Measure the validation loss now")
        self.start.setObjectName("startButton")
        self.start.clicked.connect(self.start_requested)
        self.pause.clicked.connect(self._pause_clicked)
        self.stop.clicked.connect(self.stop_requested)
        self.save.clicked.connect(self.save_requested)
        self.evaluate.clicked.connect(self.evaluate_requested)
        self.why = QLabel("")
        self.why.setObjectName("startBlocked")
        self.why.setWordWrap(True)
        self.status = QLabel("Ready. Press Start to train on the defaults.")
        self.status.setObjectName("status")
        self.status.setWordWrap(True)  # a long message wraps instead of widening the window
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p%")
        buttons = QHBoxLayout()
        for b in (self.start, self.pause, self.stop, self.save, self.evaluate):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.progress, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.why)
        layout.addWidget(self.status)
        self.paused = False
        self.running = False
        self.info: dict = {}
        self._rate = None
        self.set_running(False)

    def _button(self, text: str, shortcut: str, tip: str) -> QPushButton:
        b = QPushButton(text)
        b.setShortcut(QKeySequence(shortcut))
        b.setToolTip(f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.NativeText)})")
        return b

    def _pause_clicked(self) -> None:
        (self.resume_requested if self.paused else self.pause_requested).emit()

    # ---- state -------------------------------------------------------------------------------
    def set_start_allowed(self, problems: list[tuple[str, str]]) -> None:
        """Enable Start, or disable it and say why (the first problem, with its field)."""
        blocked = bool(problems)
        self.start.setEnabled(not blocked and not self.running)
        if blocked:
            field, message = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self.why.setText(f"Start is disabled: {field}: {message}{more}")
            self.start.setToolTip(self.why.text())
        else:
            self.why.setText("")
            self.start.setToolTip("Start training with this configuration (Ctrl+Return)")
        self.why.setVisible(blocked)

    def set_running(self, running: bool) -> None:
        self.running = running
        self.progress.setVisible(running or self.progress.value() > 0)
        for b in (self.pause, self.stop, self.save, self.evaluate):
            b.setEnabled(running)
        if not running:
            self.set_paused(False)
            self.start.setEnabled(not self.why.isVisible())
        else:
            self.start.setEnabled(False)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.pause.setText("Resume" if paused else "Pause")
        self.save.setEnabled(self.running)

    def show_state(self, state: dict) -> None:
        """Follow the engine's run state (engine.events.RunState): the Pause button and the status line."""
        name, step = state["state"], state["step"]
        self.set_paused(name in ("paused", "pausing"))
        self.pause.setEnabled(self.running and name in ("running", "pausing", "paused"))
        text = {"pausing": "Pausing after this step…",
                "paused": f"Paused at step {step}. Resume continues; you can save, evaluate or generate meanwhile.",
                "stopping": f"Stopping at step {step}: saving a checkpoint…"}.get(name)
        if text:
            self.show_message(text + (f" ({state['reason']})" if state.get("reason") else ""))

    def run_started(self, info: dict) -> None:
        self.info = info
        self._rate = None
        self.set_running(True)
        self.progress.setRange(0, info.get("max_steps") or 0)
        self.progress.setValue(info.get("step", 0))
        where = f"resumed at step {info['step']}" if info.get("resumed") else "started"
        self.status.setText(f"Run {info['run_id']} {where} on {info['device']}, precision {info['precision']} "
                            f"({info['precision_reason']}).")

    def show_steps(self, records: list[dict]) -> None:
        m = records[-1]
        rate = sum(r["tokens_per_sec"] for r in records) / len(records)
        self._rate = rate if self._rate is None else 0.8 * self._rate + 0.2 * rate
        total = m["max_steps"]
        if total:
            self.progress.setValue(m["step"])
        eta = ""
        if total and m["step"]:
            eta = f" · ETA {format_duration((total - m['step']) * m['elapsed'] / m['step'])}"
        self.status.setText(
            f"{'Paused · ' if self.paused else ''}step {m['step']}{'/' + str(total) if total else ''} · "
            f"epoch {m['epoch']} · loss {m['loss']:.4f} · {self._rate:,.0f} tokens/s · lr {m['lr']:.2e} · "
            f"elapsed {format_duration(m['elapsed'])}{eta} · {self.info.get('device', '')}")

    def run_ended(self, info: dict) -> None:
        """The run's outcome in the status line; a finished run (early stop too) fills the progress bar."""
        self.set_running(False)
        if info["status"] == "finished" and self.progress.maximum() > 0:
            self.progress.setValue(self.progress.maximum())
        best = info.get("best_val_loss")
        text = {"finished": "Finished", "stopped": "Stopped", "failed": "Failed"}.get(info["status"], info["status"])
        reason = info.get("reason") if info["status"] != "failed" else ""  # a failure has its own banner
        self.show_message(f"{text} at step {info['step']}"
                          + (f"; best validation loss {best:.4f}." if best is not None else ".")
                          + (f" {reason[:1].upper()}{reason[1:]}" if reason else ""))

    def show_message(self, text: str) -> None:
        self.status.setText(f"{time.strftime('%H:%M:%S')} {text}")
