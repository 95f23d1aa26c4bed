"""Stop a run cleanly on SIGINT, SIGTERM and SIGHUP: finish the step in flight, save, exit 128 + N.

Ctrl-C in a terminal, `kill`, systemd, a closing terminal and a scheduler's preemption all end up
here. The handler only records the signal and files a stop request; the trainer honours it at the
next step boundary, so the checkpoint it saves always describes "after step N", never half a step.
A second Ctrl-C leaves at once (KeyboardInterrupt) and keeps the last checkpoint already saved.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class GracefulStop:
    """Context manager that turns the first of SIGNALS into trainer.request("stop", reason)."""

    def __init__(self, names: tuple[str, ...] = SIGNALS):
        self.names = names
        self.trainer = None
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():  # Python only lets the main thread install
            for name in self.names:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: leave now; the last saved checkpoint stays as it is
        if self.received is None:
            self.received = signum
        if self.trainer is not None:
            self.trainer.request("stop", self.reason)

    def attach(self, trainer) -> None:
        """From now on a signal stops this trainer (one that came earlier stops it before its first step)."""
        self.trainer = trainer
        if self.received is not None:
            trainer.request("stop", self.reason)

    def cancelled(self) -> bool:
        """For long preparations (tokenizing) that poll whether to give up."""
        return self.received is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""

    @property
    def reason(self) -> str:
        return f"interrupted by {self.name}" if self.received is not None else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as shells and schedulers expect (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.received if self.received is not None else 0
