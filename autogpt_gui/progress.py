"""A terminal progress bar: one more listener of the Trainer's events."""
from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """Step, loss, tokens/s and ETA on one line, redrawn at most 5 times a second.

    Disabled (--quiet), it drops the bar, data progress, log and checkpoint lines, and still prints
    what a user reads the run for: each evaluation, and why a run stopped.
    """

    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._last = 0.0
        self._rate = None
        self._last_phase = ""

    def data_progress(self, phase: str, fraction: float) -> None:
        if self.enabled and (phase != self._last_phase or fraction >= 1.0 or time.monotonic() - self._last > 0.5):
            self._last_phase, self._last = phase, time.monotonic()
            if self.tty:
                self.stream.write(f"\r{phase}: {fraction * 100:5.1f}%   ")
                if fraction >= 1.0:
                    self.stream.write("\n")
                self.stream.flush()

    def attach(self, trainer) -> None:
        trainer.on("step", self.on_step)
        trainer.on("eval", self.on_eval)
        trainer.on("log", self.on_log)
        trainer.on("checkpoint", self.on_checkpoint)
        trainer.on("state", self.on_state)
        trainer.on("finished", self.on_finished)

    def _line(self, text: str, always: bool = False) -> None:
        if self.enabled or always:
            self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
            self.stream.flush()

    def on_step(self, m) -> None:
        # tokens/s smoothed over recent steps, so the ETA does not jump about
        self._rate = m.tokens_per_sec if self._rate is None else 0.9 * self._rate + 0.1 * m.tokens_per_sec
        now = time.monotonic()
        if not self.enabled or (now - self._last < (0.2 if self.tty else 10.0) and m.step != m.max_steps):
            return
        self._last = now
        total = f"/{m.max_steps}" if m.max_steps else ""
        eta = ""
        if m.max_steps and self._rate:
            per_step = m.elapsed / max(1, m.step)
            eta = f" | ETA {format_duration((m.max_steps - m.step) * per_step)}"
        width = 24
        filled = int(width * m.step / m.max_steps) if m.max_steps else 0
        bar = f"[{'#' * filled}{'.' * (width - filled)}] " if m.max_steps else ""
        text = (f"{bar}step {m.step}{total} | loss {m.loss:.4f} | {self._rate / 1000:.1f}k tok/s"
                f" | lr {m.lr:.2e}{eta}")
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
        else:
            self._line(text)

    def on_eval(self, m) -> None:
        accuracy = f", held-out accuracy {m.accuracy * 100:.1f}%" if m.accuracy is not None else ""
        self._line(f"step {m.step}: validation loss {m.val_loss:.4f} (best {m.best_val_loss:.4f}){accuracy}",
                   always=True)

    def on_log(self, message: str) -> None:
        self._line(message)

    def on_checkpoint(self, c) -> None:
        self._line(f"saved {c.path}")

    def on_state(self, s) -> None:
        if s.state == "stopping":
            self._line(f"stopping at step {s.step}{': ' + s.reason if s.reason else ''}; saving a checkpoint",
                       always=True)

    def on_finished(self, f) -> None:
        if f.reason:
            self._line(f"{f.status}: {f.reason}", always=True)
