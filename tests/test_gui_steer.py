"""The Steer run tab, driven like a user: live edits, markers on the loss chart, extending a stopped run."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from autogpt_gui.config import RunConfig
from autogpt_gui.engine.checkpoint import load_checkpoint
from autogpt_gui.ui.app import make_app
from autogpt_gui.ui.main_window import MainWindow

TINY = ["model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
        "train.batch_size=8", "train.eval_interval=25", "train.eval_batches=4", "train.checkpoint_interval=50",
        "optim.warmup_steps=5", "train.precision='fp32'", "train.sample_tokens=0", "train.device='cpu'",
        "optim.schedule='constant'"]


@pytest.fixture
def window(qtbot, user_home):
    make_app()
    w = MainWindow()
    w.resize(1280, 800)
    w.show()
    w.set_config(RunConfig().with_overrides([*TINY, "train.max_steps=100000"]))
    yield w
    if w.worker is not None:
        w.worker.request("stop")
    assert w.wait_for_threads(60)
    w.close()
    w.deleteLater()


def test_live_edits_are_checked_applied_marked_and_a_stopped_run_extends(qtbot, window, tmp_path):
    w = window
    live = w.live
    w.tabs.setCurrentWidget(live)
    assert not live.apply.isEnabled() and not live.extend.isEnabled()
    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.charts.steps.n >= 20, timeout=60_000)
    assert live.apply.isEnabled() and live.editors["optim.lr"].text() == "0.001"

    live.editors["optim.lr"].setText("nan")
    qtbot.mouseClick(live.apply, Qt.LeftButton)
    assert live.errors["optim.lr"].isVisible() and "learning rate" in live.errors["optim.lr"].text()
    assert w.worker.trainer.schedule.lr == 1e-3  # nothing was sent

    live.editors["optim.lr"].setText("2e-4")
    live.editors["optim.grad_clip"].setValue(0.5)
    qtbot.mouseClick(live.apply, Qt.LeftButton)
    assert not live.errors["optim.lr"].isVisible()
    qtbot.waitUntil(lambda: any(r["kind"] == "edit" for r in w.charts.markers.records), timeout=30_000)
    (edit,) = [r for r in w.charts.markers.records if r["kind"] == "edit"]
    line = w.charts.markers.lines[w.charts.markers.records.index(edit)]
    assert "optim.lr: 0.001 → 0.0002" in line.toolTip() and "optim.grad_clip: 1.0 → 0.5" in line.toolTip()
    qtbot.waitUntil(lambda: w.charts.steps.n and w.charts.steps.col("step")[-1] > edit["step"] + 2, timeout=30_000)
    lrs = dict(zip(w.charts.steps.col("step"), w.charts.steps.col("lr")))
    assert lrs[edit["step"] + 1] == pytest.approx(2e-4) and lrs[edit["step"]] == pytest.approx(1e-3)

    qtbot.mouseClick(w.controls.stop, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None, timeout=60_000)
    stopped = int(w.charts.steps.col("step")[-1])
    assert live.extend.isEnabled() and not live.apply.isEnabled()
    assert load_checkpoint(f"{w.run_path}/checkpoints/last.pt")["extensions"]["edits"] == \
        {"optim.lr": 2e-4, "optim.grad_clip": 0.5}

    live.extend_steps.setValue(30)
    qtbot.mouseClick(live.extend, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None and "Finished at step" in w.controls.status.text(), timeout=60_000)
    assert f"Finished at step {stopped + 30}" in w.controls.status.text()
    kinds = [r["kind"] for r in w.charts.markers.records]
    assert kinds.count("edit") == 1 and "resumed" in kinds and "extend" in kinds
    assert w.worker is None and w.wait_for_threads(30)
    w.grab().save(str(tmp_path / "steer.png"))


def test_the_learning_rate_finder_plots_a_sweep_and_fills_in_its_suggestion(qtbot, window):
    w = window
    w.set_config(RunConfig().with_overrides([*TINY, "train.max_steps=500", "data.source='shakespeare'"]))
    qtbot.mouseClick(w.config_panel.find_lr, Qt.LeftButton)
    dialog = w.lr_dialog
    qtbot.waitUntil(lambda: dialog.accept_btn.isEnabled() or "could not" in dialog.note.text(), timeout=60_000)
    assert dialog.suggestion is not None, dialog.note.text()
    assert len(dialog.lrs) >= 50 and dialog.lrs == sorted(dialog.lrs) and dialog.mark.isVisible()
    assert "suggested learning rate" in dialog.note.text()
    qtbot.mouseClick(dialog.accept_btn, Qt.LeftButton)
    cfg = w.config_panel.config()
    assert cfg.optim.lr == pytest.approx(float(f"{dialog.suggestion:.2g}"))
    assert w.config_panel.editors["optim.lr"].text() == f"{cfg.optim.lr:g}"
    assert w.wait_for_threads(30)


def test_a_checkpoint_marker_offers_sample_export_and_branch(qtbot, window):
    from autogpt_gui.engine.runs import Run

    w = window
    w.set_config(RunConfig().with_overrides([*TINY, "train.max_steps=120"]))
    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None and "Finished at step 120" in w.controls.status.text(), timeout=60_000)
    marks = [r for r in w.charts.markers.records if r["kind"] == "checkpoint"]
    steps = [r["step"] for r in marks]  # periodic (50, 100), best at evaluations, last (120): one line a step
    assert steps == sorted(set(steps)) and {50, 100, 120} <= set(steps)
    gone = w.charts.markers.lines[w.charts.markers.records.index(next(r for r in marks if r["step"] == 50))]
    gone.sigClicked.emit(gone, None)  # step-00000050.pt was deleted (keep the last 3): nothing to offer but its name
    assert not any(a.isEnabled() for a in w.checkpoints.menu.actions())
    w.checkpoints.menu.close()
    at100 = next(r for r in marks if r["step"] == 100)
    line = w.charts.markers.lines[w.charts.markers.records.index(at100)]
    assert "step-00000100.pt" in line.toolTip()
    line.sigClicked.emit(line, None)  # the user clicks the step-100 marker
    menu = w.checkpoints.menu
    texts = [a.text() for a in menu.actions()]
    assert texts[0].startswith("Sample from step-00000100.pt") and "Export" in texts[1] and "Branch" in texts[2]
    menu.actions()[0].trigger()
    assert w.tabs.currentWidget() is w.samples and w.samples.source.currentData() == "checkpoint"
    assert w.samples.checkpoint_path.endswith("step-00000100.pt")
    menu.close()

    parent = w.run_path
    cfg = w.config_panel.config()
    cfg.optim.lr = 3e-4
    w.set_config(cfg)
    line.sigClicked.emit(line, None)
    w.checkpoints.menu.actions()[2].trigger()  # branch with the form's learning rate
    qtbot.waitUntil(lambda: w.worker is None and "Finished at step 120" in w.controls.status.text()
                    and w.run_path != parent, timeout=60_000)
    branch = Run(w.run_path)
    assert branch.branch()["parent"] == parent and branch.branch()["step"] == 100
    steps, _ = branch.read_metrics()
    assert steps[0]["step"] == 101 and steps[0]["lr"] == pytest.approx(3e-4)
    w.runs.refresh()
    names = [w.runs.table.item(i, 0).text() for i in range(w.runs.table.rowCount())]
    assert any(f"⑂ {Run(parent).id} @ 100" in n for n in names), names
