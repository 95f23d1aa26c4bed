"""The run's state machine and the requests that drive it, honoured between steps.

Requests come from any thread (the window, the control file's reader, a signal handler, an add-on) and
wait in a queue until the loop reaches a step boundary. KINDS is the one list of what may be asked;
FROM_OUTSIDE is what another process may ask through the run folder's control file and the command line.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping

# pause, resume, stop / finish (payload: the reason), save, evaluate, sample, edit (payload: {setting: value}),
# call (payload: fn(trainer))
KINDS = ("pause", "resume", "stop", "finish", "save", "evaluate", "sample", "edit", "call")
# "call" carries code and "finish" is an add-on's (early stop) decision: neither comes from a file
IN_PROCESS_ONLY = ("finish", "call")
FROM_OUTSIDE = tuple(kind for kind in KINDS if kind not in IN_PROCESS_ONLY)
STOPS = ("stop", "finish")


class RunRequests:
    """The run's state (one of events.STATES) and the requests waiting for the next step boundary.

    `announce(state, reason)` is called on every change of state, in order (a lock keeps it so).
    """

    def __init__(self, announce: Callable[[str, str], None]):
        self.state = "idle"
        self.stop_reason = ""
        self.paused = False
        self.loop_thread: threading.Thread | None = None  # the thread inside train(), while it runs
        self._announce = announce
        self._lock = threading.RLock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._ending = "stopped"  # a "finish" request (early stop) ends the run as finished
        self._held: dict[str, Callable] = {}

    @property
    def stopping(self) -> bool:
        """A stop or finish was asked for (the loop ends at the next step boundary)."""
        return self._stop.is_set()

    @property
    def ending(self) -> str | None:
        """None while no stop was asked for; else how the run will end: "stopped", or "finished" for a finish."""
        return self._ending if self._stop.is_set() else None

    def hold(self, kind: str, fn: Callable) -> None:
        """Hand requests of `kind` to fn(payload) instead of queueing them; fn may queue one later with put()."""
        if kind not in KINDS:
            raise ValueError(f"unknown request '{kind}'; choose one of {', '.join(KINDS)}")
        self._held[kind] = fn

    def request(self, kind: str, payload=None) -> None:
        """Thread-safe: queue a request (or hand it to whoever holds its kind)."""
        if kind not in KINDS:
            raise ValueError(f"unknown request '{kind}'; choose one of {', '.join(KINDS)}")
        held = self._held.get(kind)
        if held is not None:
            held(payload)
            return
        self.put(kind, payload)

    def put(self, kind: str, payload=None) -> None:
        """Queue a request past any hold. One from another thread than the loop's is announced at once as a
        "pausing" / "stopping" state; one from the loop's own thread (a signal handler) when honoured."""
        if kind in STOPS:
            if payload and not self.stop_reason:
                self.stop_reason = str(payload)
            if kind == "finish" and not self._stop.is_set():
                self._ending = "finished"
            self._stop.set()
        self._queue.put((kind, payload))
        if self.loop_thread is not None and threading.current_thread() is not self.loop_thread:
            with self._lock:
                if kind == "pause" and self.state == "running":
                    self.set_state("pausing")
                elif kind == "stop" and self.state in ("running", "pausing", "paused"):
                    self.set_state("stopping", self.stop_reason)

    def set_state(self, state: str, reason: str = "") -> None:
        """Change the run's state and announce it; the lock keeps announcements in order."""
        with self._lock:
            if state == self.state:
                return
            self.state = state
            self._announce(state, reason)

    def honour(self, handlers: Mapping[str, Callable]) -> None:
        """Honour the waiting requests in order, each through handlers[kind](payload) (after a pause or a
        resume has changed the state). While paused, wait here for a resume or a stop."""
        while True:
            try:
                kind, payload = self._queue.get(timeout=0.05) if self.paused else self._queue.get_nowait()
            except queue.Empty:
                if self.paused and not self._stop.is_set():
                    continue
                return
            if kind in STOPS:
                self.paused = False
                return
            if kind == "pause":
                if self.paused:
                    continue
                self.paused = True
                self.set_state("paused")
            elif kind == "resume":
                if not self.paused:
                    continue
                self.paused = False
                self.set_state("running")
            handler = handlers.get(kind)
            if handler is not None:
                handler(payload)
