"""The window's background threads: named jobs (one per name at a time) and the training thread.

Held here until each thread has finished, because Python must not free a running worker; joined
on close while their last signals still reach the GUI thread.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread
from PySide6.QtWidgets import QApplication

from autogpt_gui.ui import worker as workers


class Jobs:
    """Starts Task functions in QThreads, delivers their signals on the owner's (GUI) thread, joins them."""

    def __init__(self, owner: QObject, on_error: Callable[[str, str], None]):
        self.owner, self.on_error = owner, on_error
        self.threads: dict[QThread, object] = {}
        self.running: dict[str, workers.Task] = {}
        self.closing = False

    def start(self, name: str, fn, on_result, on_error=None, on_progress=None, on_text=None) -> workers.Task:
        """Run fn(task) in a thread; a job of the same name already running is replaced in the table."""
        task = workers.Task(fn)
        if self.closing:
            return task
        owner = self.owner
        workers.deliver(task.succeeded, on_result, owner)
        workers.deliver(task.errored, on_error or self.on_error, owner)
        if on_progress:
            workers.deliver(task.progressed, on_progress, owner)
        if on_text:
            workers.deliver(task.text, on_text, owner)
        workers.deliver(task.done, lambda: self.running.pop(name, None) if self.running.get(name) is task else None,
                        owner)
        self.running[name] = task
        self.track(workers.start_thread(task, owner), task)
        return task

    def track(self, thread: QThread, worker) -> None:
        """Hold thread and worker until the thread has finished."""
        self.threads[thread] = worker
        workers.deliver(thread.finished, lambda: self.threads.pop(thread, None), self.owner)

    def cancel(self, name: str) -> None:
        task = self.running.get(name)
        if task is not None:
            task.cancel()

    def cancel_all(self) -> None:
        self.closing = True
        for task in list(self.running.values()):
            task.cancel()

    def wait(self, timeout_s: float = 120.0) -> bool:
        """Join every thread, letting their last signals through; True when all ended.

        Events are processed before each look, and the answer is only "done" once processing them started
        nothing new: a job queued a moment ago (the device probe of a new window) is joined too.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            QApplication.processEvents()
            for t in list(self.threads):
                if t.wait(20):
                    self.threads.pop(t, None)
            if not self.threads:
                QApplication.processEvents()
                if not self.threads:
                    return True
        return not self.threads
