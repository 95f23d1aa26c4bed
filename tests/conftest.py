"""Shared fixtures: an isolated user folder per test, offscreen Qt, tiny configurations."""
from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def user_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own user data / cache / settings folder."""
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOGPT_GUI_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def collect_qt_garbage_between_tests(request):
    """After a test, its closed windows and finished workers are deleted and collected on the GUI thread while
    nothing trains: left to the collector, they were once collected in the middle of the next test, while its
    worker thread built a model, and the process crashed in the collector (seen twice under heavy load)."""
    yield
    if "qtbot" not in request.fixturenames:
        return
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    if QCoreApplication.instance() is not None:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


@pytest.fixture
def tiny_config():
    """A model of a few thousand parameters on the built-in corpus: trains in a second or two."""
    from autogpt_gui.config import RunConfig

    def make(*overrides: str):
        return RunConfig(name="tiny").with_overrides([
            "model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=32",
            "model.block_size=32", "train.batch_size=8", "train.max_steps=40", "train.eval_interval=20",
            "train.eval_batches=4", "train.checkpoint_interval=20", "optim.warmup_steps=4",
            "train.precision='fp32'", "train.sample_tokens=20", "train.device='cpu'", *overrides])

    return make


@pytest.fixture(scope="session")
def shakespeare(tmp_path_factory) -> Path:
    """The built-in Tiny Shakespeare as a plain text file, for tests of file sources."""
    from autogpt_gui.engine.data.sources import ShakespeareSource

    path = tmp_path_factory.mktemp("corpus") / "tinyshakespeare.txt"
    path.write_bytes(ShakespeareSource()._data)
    return path


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory, shakespeare) -> Path:
    """A Hugging Face GPT-2 folder made with transformers: 2 layers, width 64, 4 heads, 128 positions,
    a byte-level BPE trained on Shakespeare, random weights, save_pretrained."""
    transformers = pytest.importorskip("transformers")
    import torch
    from tokenizers import ByteLevelBPETokenizer

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator([shakespeare.read_text()], vocab_size=400, special_tokens=["<|endoftext|>"])
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=128, n_embd=64, n_layer=2,
                                     n_head=4, bos_token_id=0, eos_token_id=0)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def records(run_dir: str | Path, kind: str) -> list[dict]:
    """RUN/metrics.jsonl's records of one type as far as they are written: a line still being appended is left out."""
    try:
        text = (Path(run_dir) / "metrics.jsonl").read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    written = text[: text.rfind("\n") + 1]
    return [r for r in map(json.loads, written.splitlines()) if r["type"] == kind]


def wait_until(ready: Callable[[], Any], what: str, proc: subprocess.Popen | None = None, timeout: float = 300) -> Any:
    """ready()'s first truthy value, polled; fails naming `what` if `proc` ends first. The deadline only bounds a
    hang: the outcome is decided by the event, never by how long it took."""
    deadline = time.monotonic() + timeout
    while not (value := ready()):
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout:.0f} s")
        time.sleep(0.05)  # polling the event, at 20 Hz
    return value


@pytest.fixture
def run_files():
    """Reading a run folder that another process writes: run_files.records(run_dir, kind), run_files.wait_until(
    ready, what, proc, timeout) (wait for an event there, or fail if the process ended first)."""
    import types

    return types.SimpleNamespace(records=records, wait_until=wait_until)


def pytest_exception_interact(node, call, report):
    """Print a failure at once: a crash in teardown must not swallow the reason."""
    import sys

    print(report.longreprtext[-3000:], file=sys.__stderr__)


@pytest.fixture
def make_window(qtbot, user_home):
    """make_window(settings): the main window at 1280 x 800 with a config of these settings. Afterwards its run
    is stopped and its threads joined before it closes (closing mid-run would ask a question)."""
    from autogpt_gui.config import RunConfig
    from autogpt_gui.ui.app import make_app
    from autogpt_gui.ui.main_window import MainWindow

    made = []

    def make(settings: list[str]):
        make_app()
        w = MainWindow()
        w.resize(1280, 800)
        w.show()
        w.set_config(RunConfig().with_overrides(settings))
        made.append(w)
        return w

    yield make
    for w in made:
        if w.worker is not None:
            w.worker.request("stop")
        assert w.wait_for_threads(120), "a worker thread is still running"
        w.close()
        w.deleteLater()
