"""The window, driven like a user: real buttons, real worker thread, offscreen."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QMessageBox

from autogpt_gui.config import RunConfig
from autogpt_gui.ui.app import make_app
from autogpt_gui.ui.main_window import MainWindow
from autogpt_gui.ui.worker import deliver, running_threads

TINY = ["model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
        "train.batch_size=8", "train.eval_interval=25", "train.eval_batches=4", "train.checkpoint_interval=50",
        "optim.warmup_steps=5", "train.precision='fp32'", "train.sample_tokens=30", "train.device='cpu'"]


@pytest.fixture
def window(make_window):
    return make_window([*TINY, "train.max_steps=100000"])


def assert_no_running_threads() -> None:
    """Every thread the app started (they all start through worker.start_thread) has ended."""
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()
    alive = running_threads()
    assert not alive, f"QThreads left running: {alive}"


@pytest.fixture(autouse=True)
def no_dangling_threads(qtbot):
    yield
    assert_no_running_threads()


def test_the_thread_check_fails_on_a_thread_left_running(qtbot):
    import threading

    from autogpt_gui.ui.worker import Task, start_thread

    release = threading.Event()
    owner = QObject()
    task = Task(lambda t: release.wait(300))  # until released
    thread = start_thread(task, owner)
    try:
        qtbot.waitUntil(thread.isRunning, timeout=120_000)
        with pytest.raises(AssertionError, match="QThreads left running"):
            assert_no_running_threads()
    finally:
        release.set()
        qtbot.waitUntil(lambda: not thread.isRunning(), timeout=120_000)  # quit arrives through the event loop
    assert_no_running_threads()


def _step(w) -> int:
    return int(w.charts.steps.col("step")[-1]) if w.charts.steps.n else 0


def _start_and_wait(qtbot, w, steps: int = 5):
    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: _step(w) >= steps, timeout=120_000)


def test_start_pause_resume_stop_then_resume_in_a_new_window(qtbot, window, user_home):
    w = window
    assert w.controls.start.isEnabled()
    _start_and_wait(qtbot, w, 5)
    assert "step" in w.controls.status.text()
    qtbot.waitUntil(lambda: w.charts.raw_curve.xData is not None and len(w.charts.raw_curve.xData) >= 5,
                    timeout=120_000)  # the loss chart gains points at its next frame

    qtbot.mouseClick(w.controls.pause, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.controls.pause.text() == "Resume" and "Paused at step" in w.controls.status.text(),
                    timeout=120_000)
    held = w.worker.trainer.step
    seen = []
    w.worker.trainer.request("call", lambda trainer: seen.append(trainer.step))  # answered by the paused loop
    qtbot.waitUntil(lambda: bool(seen), timeout=120_000)
    assert seen == [held] and w.worker.trainer.step == held  # pause holds the step count still

    qtbot.mouseClick(w.controls.pause, Qt.LeftButton)  # now "Resume"
    qtbot.waitUntil(lambda: w.worker is not None and w.worker.trainer.step > held + 3
                    and w.controls.pause.text() == "Pause", timeout=120_000)  # the label follows the state event
    assert w.controls.pause.text() == "Pause"

    # a pause that does not come from the button (the engine's own request): the button follows the state event
    w.worker.trainer.request("pause")
    qtbot.waitUntil(lambda: w.controls.pause.text() == "Resume" and "Paused at step" in w.controls.status.text(),
                    timeout=120_000)
    w.worker.trainer.request("resume")
    qtbot.waitUntil(lambda: w.controls.pause.text() == "Pause", timeout=120_000)

    ended = []
    deliver(w.worker.finished, ended.append, w)  # on the GUI thread, as the window's own listeners
    qtbot.mouseClick(w.controls.stop, Qt.LeftButton)
    qtbot.waitUntil(lambda: bool(ended) and w.worker is None, timeout=120_000)
    assert ended[0]["status"] == "stopped" and "Stopped at step" in w.controls.status.text()
    stopped_at = ended[0]["step"]
    run_path = w.run_path
    qtbot.waitUntil(lambda: w.checkpoints.table.rowCount() >= 2, timeout=120_000)

    second = MainWindow()
    qtbot.addWidget(second)
    second.show()
    try:
        second.runs.select_run(run_path)
        qtbot.mouseClick(second.runs.open_btn, Qt.LeftButton)
        assert second.charts.steps.n > 0
        second.checkpoints.select_row("last.pt")
        qtbot.mouseClick(second.checkpoints.resume_btn, Qt.LeftButton)
        qtbot.waitUntil(lambda: f"resumed at step {stopped_at}," in second.log.toPlainText(), timeout=120_000)
        qtbot.waitUntil(lambda: _step(second) > stopped_at + 2, timeout=120_000)
        assert int(second.charts.steps.col("step")[0]) == 1  # the history before the checkpoint is kept
    finally:
        if second.worker is not None:
            second.worker.request("stop")
        assert second.wait_for_threads(120)


def test_invalid_field_disables_start_with_the_engines_message(qtbot, window):
    w = window
    heads = w.config_panel.editors["model.n_head"]
    heads.setValue(3)
    assert not w.controls.start.isEnabled()
    assert "heads (3) must divide the width (32)" in w.controls.why.text()
    assert w.config_panel.errors["model.n_head"].isVisible()
    heads.setValue(4)
    assert w.controls.start.isEnabled() and not w.controls.why.isVisible()

    lr = w.config_panel.editors["optim.lr"]
    lr.setText("nan")
    lr.editingFinished.emit()
    assert not w.controls.start.isEnabled() and "optim.lr" in w.controls.why.text()


def test_error_inside_the_worker_shows_in_the_window_and_app_keeps_working(qtbot, window, tmp_path):
    w = window
    bad = tmp_path / "binary.txt"
    bad.write_bytes(bytes(range(256)) * 4)
    cfg = w.config_panel.config()
    cfg.data.source, cfg.data.path = "file", str(bad)
    w.set_config(cfg)
    with qtbot.waitSignal(w.controls.start_requested):
        qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    assert w.error_banner.isVisible() and "binary" in w.error_banner.label.text()
    assert "Traceback" not in w.error_banner.label.text()
    assert w.controls.start.isEnabled()

    cfg.data.source, cfg.data.path = "python-docs", ""
    w.set_config(cfg)
    _start_and_wait(qtbot, w, 3)  # the app still trains after the failure
    assert not w.error_banner.isVisible()


def test_closing_during_training_asks_then_stops_saves_and_joins(qtbot, window, monkeypatch):
    w = window
    _start_and_wait(qtbot, w, 3)
    worker_thread = w.train_thread
    run_path = w.run_path
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w.close()
    assert w.isVisible() and w.worker is not None  # "No" keeps training
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    w.close()
    assert not worker_thread.isRunning()
    from pathlib import Path

    assert (Path(run_path) / "checkpoints" / "last.pt").exists()


def test_samples_appear_at_evaluations_and_playground_streams_text(qtbot, window):
    w = window
    _start_and_wait(qtbot, w, 26)
    qtbot.waitUntil(lambda: "step 25" in w.samples.history.toPlainText(), timeout=120_000)
    w.samples.prompt.setPlainText("def ")
    w.samples.max_tokens.setValue(20)
    qtbot.mouseClick(w.samples.generate, Qt.LeftButton)
    assert not w.samples.generate.isEnabled()
    qtbot.waitUntil(lambda: w.samples.generate.isEnabled(), timeout=120_000)
    assert w.samples.output.toPlainText().startswith("def ") and len(w.samples.output.toPlainText()) > 8


def test_data_preview_and_tokenizing_show_counts_and_tokens(qtbot, window):
    w = window
    qtbot.waitUntil(lambda: "Python documentation" in w.data.info.text(), timeout=120_000)
    assert len(w.data.preview.toPlainText()) > 100
    qtbot.mouseClick(w.data.tokenize, Qt.LeftButton)
    qtbot.waitUntil(lambda: "training tokens" in w.data.result.text(), timeout=120_000)
    assert "Corpus:" in w.config_panel.summary.text() and "epochs" in w.config_panel.summary.text()
    assert "<span" in w.data.tokens.toHtml()


def _engine_run(steps: int):
    from autogpt_gui import paths
    from autogpt_gui.engine.run.runs import Run
    from autogpt_gui.engine.session import build_session

    cfg = RunConfig(name="earlier").with_overrides([*TINY, f"train.max_steps={steps}", "train.checkpoint_interval=10"])
    run = Run.create(cfg, paths.runs_dir())
    build_session(cfg, run).trainer.train()
    return run


def test_interrupted_run_is_offered_for_resume_on_the_next_start(qtbot, user_home):
    run = _engine_run(20)
    status = run.read_status()
    run.write_status("running", status["step"], 40, status["best_val_loss"])  # as if the app had been killed
    import json

    data = json.loads((run.path / "status.json").read_text())
    data["pid"] = 2**22 + 12345  # no such process
    (run.path / "status.json").write_text(json.dumps(data))

    make_app()
    w = MainWindow()
    w.show()
    try:
        assert w.resume_banner.isVisible() and "interrupted at step 20" in w.resume_banner.label.text()
        qtbot.mouseClick(w.resume_banner.action, Qt.LeftButton)
        qtbot.waitUntil(lambda: "resumed at step 20," in w.log.toPlainText(), timeout=120_000)
        qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
        assert not w.resume_banner.isVisible() and "Finished at step 20" in w.controls.status.text()
    finally:
        assert w.wait_for_threads(120)
        w.close()


def test_playground_generates_from_a_saved_run_when_nothing_trains(qtbot, user_home):
    run = _engine_run(20)
    make_app()
    w = MainWindow()
    w.show()
    try:
        w.runs.refresh()
        w.runs.select_run(str(run.path))
        qtbot.mouseClick(w.runs.open_btn, Qt.LeftButton)
        assert w.checkpoints.table.rowCount() >= 3 and "step 20" in w.samples.history.toPlainText()
        w.runs.table.item(0, 0).setCheckState(Qt.Checked)  # tick the run to overlay its curve
        assert len(w.charts.overlays) == 1 and len(w.charts.overlays[0].yData) == 20
        w.samples.prompt.setPlainText("The ")
        w.samples.max_tokens.setValue(15)
        qtbot.mouseClick(w.samples.generate, Qt.LeftButton)
        qtbot.waitUntil(lambda: w.samples.generate.isEnabled(), timeout=120_000)
        assert w.samples.output.toPlainText().startswith("The ") and len(w.samples.output.toPlainText()) > 6
    finally:
        assert w.wait_for_threads(120)
        w.close()


def test_every_setting_of_the_form_round_trips_through_toml(qtbot, window, tmp_path):
    from dataclasses import fields

    from autogpt_gui.config import DataConfig, ModelConfig, OptimConfig, TrainConfig

    w = window
    keys = set(w.config_panel.editors)
    everything = {f"{s}.{f.name}" for s, cls in (("model", ModelConfig), ("data", DataConfig),
                                                 ("optim", OptimConfig), ("train", TrainConfig)) for f in fields(cls)}
    # derived (from the tokenizer, or from a pretrained model's config.json) or for scripts
    assert everything - keys <= {"model.vocab_size", "train.log_interval", "model.activation", "model.ln_eps",
                                 "model.n_positions", "model.model_type", "model.rms_norm_eps", "model.rope_scaling",
                                 "model.rope_factor", "model.rope_low_freq_factor", "model.rope_high_freq_factor",
                                 "model.rope_original_max_position_embeddings", "model.attention_bias",
                                 "model.qkv_bias", "model.sliding_window", "model.bos_token_id",
                                 "model.eos_token_ids", "model.pad_token_id"}
    assert all(w.config_panel.editors[k].toolTip() for k in keys)
    w.config_panel.editors["train.batch_size"].setValue(7)
    w.config_panel.editors["optim.schedule"].setCurrentIndex(w.config_panel.editors["optim.schedule"].findData("wsd"))
    path = tmp_path / "run.toml"
    w.config_panel.config().save(path)
    again = RunConfig.load(path)
    assert again.train.batch_size == 7 and again.optim.schedule == "wsd"
    assert w.config_panel.editors["optim.decay_fraction"].isEnabled()


def test_a_model_too_big_for_memory_disables_start_at_its_field(qtbot, window):
    w = window
    cfg = w.config_panel.config()
    cfg.model.preset, cfg.model.n_layer, cfg.model.n_embd, cfg.model.n_head = "custom", 2000, 4096, 32
    w.set_config(cfg)
    assert not w.controls.start.isEnabled()
    why = w.controls.why.text()
    import re

    assert re.search(r"model\.n_layer: training needs about [\d.]+ [GT]B but this computer has [\d.]+ GB", why), why
    assert "training needs about" in w.config_panel.errors["model.n_layer"].text()


def test_a_run_killed_before_its_first_checkpoint_is_offered_a_fresh_start_in_place(qtbot, user_home):
    import json
    import os
    import subprocess
    import sys

    from autogpt_gui import paths
    from autogpt_gui.engine.run.runs import Run

    cfg = RunConfig(name="early").with_overrides([*TINY, "train.max_steps=30"])
    run = Run.create(cfg, paths.runs_dir())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run.path / "status.json").write_text(json.dumps({"status": "running", "pid": dead.pid, "step": 4}))
    stale = run.checkpoints_dir / f".step-00000010.pt.{dead.pid}.tmp"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"x" * 100)

    make_app()
    w = MainWindow()
    w.show()
    try:
        assert not stale.exists()  # listing the runs removed the dead writer's temp file
        assert w.resume_banner.isVisible() and "before its first checkpoint" in w.resume_banner.label.text()
        assert w.resume_banner.action.text() == "Start again"
        qtbot.mouseClick(w.resume_banner.action, Qt.LeftButton)
        qtbot.waitUntil(lambda: w.worker is None and "Finished at step 30" in w.controls.status.text(),
                        timeout=120_000)
        assert w.run_path == str(run.path) and os.listdir(paths.runs_dir()) == [run.id]
        assert run.summary().status == "finished" and run.has_checkpoint()
    finally:
        assert w.wait_for_threads(120)
        w.close()


def test_a_task_run_draws_its_held_out_accuracy_live(qtbot, window):
    w = window
    w.set_config(RunConfig().with_overrides([*TINY, "data.source='task:addition'", "train.max_steps=60",
                                             "train.eval_interval=20", "model.block_size=16"]))
    assert w.charts.acc_plot.scene() is None  # no accuracy chart for text data
    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None and w.charts.evals.n >= 3, timeout=120_000)
    w.charts.redraw()
    assert w.charts.acc_plot.scene() is not None and len(w.charts.acc_curve.yData) == 3
    assert all(0 <= v <= 100 for v in w.charts.acc_curve.yData)
    assert "held-out examples:" in w.samples.history.toPlainText()
    assert w.runs.table.horizontalHeaderItem(4).text() == "Accuracy" and w.runs.table.item(0, 4).text().endswith("%")


def test_resuming_a_run_that_another_process_trains_is_refused_in_the_window(qtbot, user_home):
    import json
    import socket
    import subprocess
    import sys

    run = _engine_run(20)
    other = subprocess.Popen([sys.executable, "-c", "import threading; threading.Event().wait()"])  # until killed
    make_app()
    w = MainWindow()
    w.show()
    try:
        lock = {"host": socket.gethostname(), "pid": other.pid, "since": 0}
        (run.path / "lock").write_text(json.dumps(lock))
        status_before = (run.path / "status.json").read_text()
        w.resume_from(str(run.checkpoints_dir / "last.pt"))
        qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
        assert w.error_banner.isVisible() and f"being trained by process {other.pid}" in w.error_banner.label.text()
        assert (run.path / "status.json").read_text() == status_before and json.loads(
            (run.path / "lock").read_text())["pid"] == other.pid
    finally:
        other.kill()
        other.wait()
        assert w.wait_for_threads(120)
        w.close()
