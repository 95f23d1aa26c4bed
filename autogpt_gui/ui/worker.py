"""The only bridge between the engine and the widgets: QObjects living in QThreads.

A worker owns the torch objects; it hands the GUI plain dicts of numbers and strings. Step
metrics are coalesced in the training thread and emitted at most ~30 times a second, however
fast steps come, so a fast model cannot flood the GUI's event loop.
"""
from __future__ import annotations

import logging
import subprocess
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import shiboken6
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from autogpt_gui.errors import AutoGPTError, Cancelled
from autogpt_gui.ui.run_signals import RunSignals

log = logging.getLogger("autogpt_gui")
EMIT_INTERVAL = 1 / 10  # coalesced: at most 10 signals a second, however fast steps come


def _describe(err: BaseException) -> tuple[str, str]:
    """(message, field) for the window: our errors as they are, others in one plain sentence."""
    from autogpt_gui.engine.run.status import describe_failure

    if isinstance(err, AutoGPTError):
        return describe_failure(err), err.field or ""
    if isinstance(err, MemoryError):
        return describe_failure(err), "train.batch_size"
    log.error("unexpected error in a worker:\n%s", "".join(traceback.format_exception(err)))
    return describe_failure(err), ""


class Task(QObject):
    """Runs fn(task) once in its thread; fn may call task.progress / task.text and check task.cancelled."""

    progressed = Signal(str, float)
    text = Signal(str)
    succeeded = Signal(object)
    errored = Signal(str, str)
    done = Signal()

    def __init__(self, fn):
        super().__init__()
        self._fn = fn
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def progress(self, phase: str, fraction: float) -> None:
        self.progressed.emit(phase, fraction)

    @Slot()
    def run(self) -> None:
        try:
            self.succeeded.emit(self._fn(self))
        except Cancelled:
            self.errored.emit("cancelled", "")
        except BaseException as err:  # noqa: BLE001 - every failure becomes a message, never a crash
            self.errored.emit(*_describe(err))
        finally:
            self.done.emit()


class TrainingWorker(RunSignals):
    """Builds a session from a RunConfig (or resumes a checkpoint) and trains it in its thread."""

    oom_offered = Signal(dict)  # on_oom = "ask": the step did not fit; answer_oom(True) halves the micro-batch
    chat_answered = Signal(str, str)  # chat(): the live model's reply, or "" and why there is none
    done = Signal()

    def __init__(self, cfg, run_path: str | None = None, resume_from: str | None = None, extend: int = 0):
        super().__init__()
        self.cfg, self.run_path, self.resume_from, self.extend = cfg, run_path, resume_from, extend
        self.trainer = None
        self._cancel = threading.Event()
        self._stop_reason: str | None = None
        self._lock = threading.Lock()
        self._pending: list[dict] = []
        self._last_emit = 0.0
        self._oom_answer: list[bool] = []
        self._oom_answered = threading.Event()

    # ---- requests from the GUI thread (thread-safe) ---------------------------------------
    def request(self, kind: str, payload=None) -> None:
        """pause, resume, stop (payload: why), save, evaluate, sample or edit (payload: {setting: value});
        before training starts, stop cancels."""
        if kind == "stop":
            self._cancel.set()
            self._stop_reason = payload
        if self.trainer is not None:
            self.trainer.request(kind, payload)

    def generate(self, prompt: str, max_new_tokens: int, temperature: float, top_k: int | None,
                 top_p: float | None, seed: int | None = None) -> bool:
        """Generate from the live model between two steps; text streams through text_generated. A private
        random generator (seeded) leaves the training's random streams untouched."""
        if self.trainer is None:
            return False

        def call(trainer):
            from autogpt_gui.engine.model.generate import generate_text

            text = generate_text(trainer.model, self.tokenizer, prompt, max_new_tokens, temperature, top_k, top_p,
                                 seed=seed if seed is not None else 0, on_text=self.text_generated.emit)
            self.generation_done.emit(text)

        self.trainer.request("call", call)
        return True

    def chat(self, turns: list[dict], max_new_tokens: int, temperature: float, seed: int) -> bool:
        """Answer a conversation with the live model between two steps, through the run's chat template; the
        reply arrives through chat_answered. False before the model exists."""
        if self.trainer is None:
            return False

        def call(trainer):
            from autogpt_gui.ui.chat_jobs import live_reply

            try:
                self.chat_answered.emit(live_reply(trainer.model, self.tokenizer, self.cfg, turns, max_new_tokens,
                                                   temperature, seed), "")
            except Exception as err:  # noqa: BLE001 - a failed reply is a message in the playground, not a failed run
                self.chat_answered.emit("", _describe(err)[0])

        self.trainer.request("call", call)
        return True

    def answer_oom(self, halve: bool) -> None:
        """The user's answer to oom_offered: halve the micro-batch and redo the step, or end the run."""
        self._oom_answer[:] = [halve]
        self._oom_answered.set()

    def _ask_oom(self, offer: dict) -> bool:  # training thread: the step waits for the window's answer
        self._flush()
        self._oom_answered.clear()
        self.oom_offered.emit(offer)
        while not self._oom_answered.wait(0.2):
            if self._cancel.is_set():  # Stop while asked: no
                return False
        return self._oom_answer[0]

    # ---- the training thread ----------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        info = {"status": "failed", "step": 0, "best_val_loss": None, "reason": "", "run_path": self.run_path}
        try:
            info = self._train()
        except Cancelled:
            info = {**info, "status": "stopped", "reason": "cancelled before training started"}
        except BaseException as err:  # noqa: BLE001
            message, field = _describe(err)
            self.errored.emit(message, field)
            info = {**info, "reason": message, "step": self.trainer.step if self.trainer else 0}
        finally:
            self._flush()
            self.finished.emit(info)
            self.done.emit()

    def _train(self) -> dict:
        from autogpt_gui import paths
        from autogpt_gui.engine.run.runs import Run

        run = Run(self.run_path) if self.run_path else Run.create(self.cfg, paths.runs_dir())
        self.run_path = str(run.path)
        with run.writing():  # refused, naming the holder, if another process trains this run
            if self.resume_from:
                self.cfg.save(run.files.config)
            return self._train_in(run)

    def _train_in(self, run) -> dict:
        from autogpt_gui.engine.run.jsonl import JsonlTail
        from autogpt_gui.engine.run.status import RunStarted
        from autogpt_gui.engine.session import build_session

        announced = JsonlTail(run.files.metrics, at_end=True)
        session = build_session(self.cfg, run, self.resume_from, progress=self.data_progressed.emit,
                                cancelled=self._cancel.is_set, extend=self.extend)
        self.tokenizer, self.cfg = session.tokenizer, session.config
        tr = session.trainer
        for event, fn in (("step", self._on_step), ("eval", self._on_eval), ("checkpoint", self._on_checkpoint),
                          ("sample", self._on_sample), ("log", self._on_log), ("state", self._on_state),
                          ("marker", lambda m: self.marked.emit(asdict(m)))):
            tr.on(event, fn)
        if self.cfg.train.on_oom == "ask" and "oom" in tr.extensions:
            tr.extensions["oom"].ask = self._ask_oom
        self.trainer = tr
        for rec in announced.records():  # markers of the build (resumed, extend), before these listeners
            if rec.pop("type", None) == "marker":
                self.marked.emit(rec)
        if self._cancel.is_set():
            tr.request("stop", self._stop_reason)
        tr.prepare()  # precision is chosen now, so "started" can say what it chose
        self.started.emit(asdict(RunStarted(
            self.run_path, run.id, str(tr.device), tr.precision, tr.precision_reason, session.model.num_params(),
            tr.max_steps, tr.step, tr.epoch, tr.tokens_seen, len(session.data.train), len(session.data.val),
            session.tokenizer.vocab_size, session.data.source_label,
            self.cfg.train.batch_size * self.cfg.model.block_size * self.cfg.train.grad_accum,
            bool(self.resume_from))))
        result = tr.train()
        return {**asdict(result), "run_path": self.run_path}

    # ---- listeners (training thread) -----------------------------------------------------------
    def _on_step(self, m) -> None:
        with self._lock:
            self._pending.append(asdict(m))
        now = time.perf_counter()
        if now - self._last_emit >= EMIT_INTERVAL:
            self._flush(now)

    def _flush(self, now: float | None = None) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        self._last_emit = now or time.perf_counter()
        if batch:
            self.stepped.emit(batch)

    def _on_eval(self, m) -> None:
        self._flush()
        self.evaluated.emit(asdict(m))

    def _on_checkpoint(self, c) -> None:
        self.checkpoint_saved.emit(asdict(c))

    def _on_sample(self, s) -> None:
        self.sampled.emit(asdict(s))

    def _on_state(self, s) -> None:
        self._flush()
        self.state_changed.emit(asdict(s))

    def _on_log(self, message: str) -> None:
        self._flush()
        self.logged.emit(message)


class _Relay(QObject):
    """Lives in the GUI thread, so a signal from a worker thread reaches fn through the event loop."""

    def __init__(self, owner: QObject, fn):
        super().__init__(owner)
        self.fn = fn

    def call(self, *args) -> None:
        self.fn(*args)


def deliver(signal, fn, owner: QObject) -> None:
    """Connect a worker's signal to any callable so that it runs on owner's (the GUI) thread.

    A lambda connected directly would run in the emitting thread; a bound method of a QObject
    that lives in the GUI thread is queued to it.
    """
    signal.connect(_Relay(owner, fn).call)


_started: list[QThread] = []  # every thread the app starts, so a test (or quitting) can see them all


def running_threads() -> list[QThread]:
    """The threads started by start_thread that are still running."""
    _started[:] = [t for t in _started if shiboken6.isValid(t)]
    return [t for t in _started if t.isRunning()]


def start_thread(worker: QObject, owner: QObject) -> QThread:
    """Move worker to a new QThread that starts worker.run and ends when worker emits done."""
    thread = QThread(owner)
    _started.append(thread)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.done.connect(thread.quit)
    # the worker goes back to the GUI thread before it is deleted: destroyed in its own thread, ~QObject holds
    # Qt's pooled signal lock while shiboken waits for the GIL, which the GUI thread may hold (a deadlock seen)
    gui = owner.thread()
    worker.done.connect(lambda *_: worker.moveToThread(gui), Qt.DirectConnection)
    thread.finished.connect(worker.deleteLater)
    thread.start()
    return thread


# ---- background jobs for the panels ---------------------------------------------------------
def tokenize_job(cfg):
    """A Task function: tokenize cfg's source and describe the result for the data panel."""

    def job(task: Task) -> dict:
        from autogpt_gui import paths
        from autogpt_gui.engine.data.sources import make_source, prepare_tokens

        source = make_source(cfg.data)
        data = prepare_tokens(source, cfg.data, paths.cache_dir(), task.progress, task.cancelled)
        sample = source.preview(600)
        lines = [ln for ln in sample.splitlines() if ln.strip()][:6]
        tokenized = [data.tokenizer.token_strings(data.tokenizer.encode(ln, strict=False))[:80] for ln in lines]
        return {"train_tokens": len(data.train), "val_tokens": len(data.val), "vocab_size": data.tokenizer.vocab_size,
                "from_cache": data.from_cache, "tokenized": tokenized, "label": source.label}

    return job


def preview_job(cfg):
    """A Task function: size and the first characters of cfg's source (for a chat source, its conversations)."""
    if cfg.data.source == "chat":
        from autogpt_gui.ui.chat_jobs import chat_preview_job

        return chat_preview_job(cfg)

    def job(task: Task) -> dict:
        from autogpt_gui.engine.data.sources import make_source

        source = make_source(cfg.data)
        return {"label": source.label, "size": source.size(), "preview": source.preview(3000)}

    return job


def generation_job(checkpoint: str, prompt: str, max_new_tokens: int, temperature: float, top_k, top_p,
                   seed: int | None = None):
    """A Task function: generate from a checkpoint file, run folder or pretrained model, streaming text."""

    def job(task: Task) -> str:
        from autogpt_gui.engine.load import load_model
        from autogpt_gui.engine.model.generate import generate_text

        model, tokenizer, _ = load_model(Path(checkpoint))
        return generate_text(model, tokenizer, prompt, max_new_tokens, temperature, top_k, top_p, seed=seed,
                             on_text=task.text.emit)

    return job


def launch_group(run_path: str, nproc: int) -> subprocess.Popen:
    """Train the run in `run_path` (created, not started) with nproc processes under torchrun, in its own
    session: the window follows it through the run folder, and closing the window leaves it training."""
    from autogpt_gui.engine.train.distributed import torchrun_command

    return subprocess.Popen(torchrun_command(nproc) + ["resume", run_path, "--restart", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def find_lr_job(cfg):
    """A Task function: sweep the learning rate on a fresh copy of cfg's model; progress is (lr as text, loss)."""

    def job(task: Task) -> dict:
        from autogpt_gui.engine.lr_finder import find_lr

        sweep = find_lr(cfg, progress=lambda i, lr, loss: task.progress(f"{lr:.6e}", loss), cancelled=task.cancelled)
        return {"lrs": sweep.lrs, "smoothed": sweep.smoothed, "suggestion": sweep.suggestion, "text": sweep.describe()}

    return job


def devices_job(task: Task) -> list[tuple[str, str]]:
    """A Task function: the devices torch can train on (imports torch, off the GUI thread)."""
    from autogpt_gui.engine.train.precision import list_devices

    return list_devices()


def export_job(source: str, out: str, fmt: str = "hf", quant: str = "f32"):
    """A Task function: export a checkpoint (or a run's best) as fmt, "hf", "gguf" (of weight type quant) or
    "native"."""

    def job(task: Task) -> str:
        from autogpt_gui.engine.export import export_model

        return str(export_model(source, out, fmt, quant))

    return job
