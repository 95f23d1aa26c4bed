"""The Steer run tab, driven like a user: live edits, markers on the loss chart, extending a stopped run."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6.QtCore import Qt

from autogpt_gui.config import RunConfig
from autogpt_gui.engine.run.checkpoints import load_checkpoint

TINY = ["model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
        "train.batch_size=8", "train.eval_interval=25", "train.eval_batches=4", "train.checkpoint_interval=50",
        "optim.warmup_steps=5", "train.precision='fp32'", "train.sample_tokens=0", "train.device='cpu'",
        "optim.schedule='constant'"]


@pytest.fixture
def window(make_window):
    return make_window([*TINY, "train.max_steps=100000"])


def test_live_edits_are_checked_applied_marked_and_a_stopped_run_extends(qtbot, window, tmp_path):
    w = window
    live = w.live
    w.tabs.setCurrentWidget(live)
    assert not live.apply.isEnabled() and not live.extend.isEnabled()
    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.charts.steps.n >= 20, timeout=120_000)
    assert live.apply.isEnabled() and live.editors["optim.lr"].text() == "0.001"

    live.editors["optim.lr"].setText("nan")
    qtbot.mouseClick(live.apply, Qt.LeftButton)
    assert live.errors["optim.lr"].isVisible() and "learning rate" in live.errors["optim.lr"].text()
    assert w.worker.trainer.schedule.lr == 1e-3  # nothing was sent

    live.editors["optim.lr"].setText("2e-4")
    live.editors["optim.grad_clip"].setValue(0.5)
    qtbot.mouseClick(live.apply, Qt.LeftButton)
    assert not live.errors["optim.lr"].isVisible()
    qtbot.waitUntil(lambda: any(r["kind"] == "edit" for r in w.charts.markers.records), timeout=120_000)
    (edit,) = [r for r in w.charts.markers.records if r["kind"] == "edit"]
    line = w.charts.markers.lines[w.charts.markers.records.index(edit)]
    assert "optim.lr: 0.001 → 0.0002" in line.toolTip() and "optim.grad_clip: 1.0 → 0.5" in line.toolTip()
    qtbot.waitUntil(lambda: w.charts.steps.n and w.charts.steps.col("step")[-1] > edit["step"] + 2, timeout=120_000)
    lrs = dict(zip(w.charts.steps.col("step"), w.charts.steps.col("lr")))
    assert lrs[edit["step"] + 1] == pytest.approx(2e-4) and lrs[edit["step"]] == pytest.approx(1e-3)

    qtbot.mouseClick(w.controls.stop, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    stopped = int(w.charts.steps.col("step")[-1])
    assert live.extend.isEnabled() and not live.apply.isEnabled()
    assert load_checkpoint(f"{w.run_path}/checkpoints/last.pt")["extensions"]["edits"] == \
        {"optim.lr": 2e-4, "optim.grad_clip": 0.5}

    live.extend_steps.setValue(30)
    qtbot.mouseClick(live.extend, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None and "Finished at step" in w.controls.status.text(), timeout=120_000)
    assert f"Finished at step {stopped + 30}" in w.controls.status.text()
    kinds = [r["kind"] for r in w.charts.markers.records]
    assert kinds.count("edit") == 1 and "resumed" in kinds and "extend" in kinds
    assert w.worker is None and w.wait_for_threads(120)
    w.grab().save(str(tmp_path / "steer.png"))


def test_the_learning_rate_finder_plots_a_sweep_and_fills_in_its_suggestion(qtbot, window):
    w = window
    w.set_config(RunConfig().with_overrides([*TINY, "train.max_steps=500", "data.source='shakespeare'"]))
    qtbot.mouseClick(w.config_panel.find_lr, Qt.LeftButton)
    dialog = w.lr_dialog
    qtbot.waitUntil(lambda: dialog.accept_btn.isEnabled() or "could not" in dialog.note.text(), timeout=120_000)
    assert dialog.suggestion is not None, dialog.note.text()
    assert len(dialog.lrs) >= 50 and dialog.lrs == sorted(dialog.lrs) and dialog.mark.isVisible()
    assert "suggested learning rate" in dialog.note.text()
    qtbot.mouseClick(dialog.accept_btn, Qt.LeftButton)
    cfg = w.config_panel.config()
    assert cfg.optim.lr == pytest.approx(float(f"{dialog.suggestion:.2g}"))
    assert w.config_panel.editors["optim.lr"].text() == f"{cfg.optim.lr:g}"
    assert w.wait_for_threads(120)


def test_a_checkpoint_marker_offers_sample_export_and_branch(qtbot, window):
    from autogpt_gui.engine.run.runs import Run

    w = window
    w.set_config(RunConfig().with_overrides([*TINY, "train.max_steps=120"]))
    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None and "Finished at step 120" in w.controls.status.text(), timeout=120_000)
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
                    and w.run_path != parent, timeout=120_000)
    branch = Run(w.run_path)
    assert branch.branch()["parent"] == parent and branch.branch()["step"] == 100
    steps, _ = branch.read_metrics()
    assert steps[0]["step"] == 101 and steps[0]["lr"] == pytest.approx(3e-4)
    w.runs.refresh()
    names = [w.runs.table.item(i, 0).text() for i in range(w.runs.table.rowCount())]
    assert any(f"(branch of {Run(parent).id} at step 100)" in n for n in names), names
    for i in range(w.runs.table.rowCount()):  # tick both to compare: the curves coincide to step 100, then part
        w.runs.table.item(i, 0).setCheckState(Qt.Checked)
    by_run = {c.name(): (c.xData, c.yData) for c in w.charts.overlays}
    (px, py), (bx, by) = by_run[Run(parent).summary().name], by_run[branch.summary().name]
    assert list(px) == list(bx) == list(range(1, 121))
    assert np.array_equal(py[:100], by[:100]) and not np.array_equal(py[100:], by[100:])
    if os.environ.get("AUTOGPT_SCREENSHOTS"):
        w.tabs.setCurrentWidget(w.runs)
        w.charts.redraw()
        w.grab().save(f"{os.environ['AUTOGPT_SCREENSHOTS']}/branch-overlay.png")


def test_a_run_with_an_out_of_memory_offer_an_edit_a_rollback_and_an_early_stop(qtbot, window, tmp_path, monkeypatch):
    import torch

    from autogpt_gui.engine.train.trainer import Trainer

    w = window
    gen = torch.Generator().manual_seed(0)  # a pattern to learn, then random letters: validation soon stalls
    corpus = tmp_path / "stall.txt"
    corpus.write_text("the cat sat on the mat. " * 2200 + "".join(chr(97 + int(i)) for i in
                                                                 torch.randint(0, 26, (6000,), generator=gen)))
    w.set_config(RunConfig().with_overrides([*TINY, "train.max_steps=2000", "data.source='file'",
                                             f"data.path='{corpus}'", "data.val_fraction=0.1", "optim.lr=3e-3",
                                             "train.eval_interval=20", "train.early_stop_patience=3",
                                             "train.on_oom='ask'"]))
    real_loss, poisoned, held = Trainer._loss, [], []

    def hooks(model, x, y):  # step 31's micro-batch of 8 does not fit; step 60's batch is poisoned, once
        step = w.worker.trainer.step
        if step == 30 and x.shape[0] == 8:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        if step == 40 and not held:  # the run pauses for the live edit: an early stop cannot come before it
            held.append(step)
            w.worker.trainer.request("pause")
        logits, loss = real_loss(model, x, y)
        if step == 59 and not poisoned:
            poisoned.append(step)
            return logits, loss * 20
        return logits, loss

    monkeypatch.setattr(Trainer, "_loss", staticmethod(hooks))
    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: getattr(w, "oom_box", None) is not None and w.oom_box.isVisible(), timeout=120_000)
    box = w.oom_box
    assert "micro-batch of 8" in box.text() and "Halve it to 4" in box.text() and w.charts.steps.n == 30
    shots = os.environ.get("AUTOGPT_SCREENSHOTS")  # for a person to look at
    if shots:
        box.grab().save(f"{shots}/out-of-memory.png")
    qtbot.mouseClick(box.button(box.StandardButton.Yes), Qt.LeftButton)

    qtbot.waitUntil(lambda: w.charts.steps.n >= 40 and w.controls.pause.text() == "Resume", timeout=120_000)
    w.live.editors["optim.lr"].setText("2e-3")
    qtbot.mouseClick(w.live.apply, Qt.LeftButton)
    qtbot.waitUntil(lambda: any(r["kind"] == "edit" for r in w.charts.markers.records), timeout=120_000)
    qtbot.mouseClick(w.controls.pause, Qt.LeftButton)  # now "Resume"
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    assert "early stop: validation loss has not improved" in w.controls.status.text().lower()
    kinds = [r["kind"] for r in w.charts.markers.records]
    assert {"oom", "edit", "rollback", "early_stop"} <= set(kinds), kinds
    (oom,) = [r for r in w.charts.markers.records if r["kind"] == "oom"]
    assert oom["step"] == 30 and oom["values"]["batch_size"] == [8, 4]
    assert list(w.charts.steps.col("step")) == list(range(1, w.charts.steps.n + 1))  # no step lost or repeated
    assert w.width() == 1280  # long messages and paths wrap or clip; they never widen the window
    w.tabs.setCurrentWidget(w.live)
    w.charts.redraw()  # the charts draw at most once a frame: draw now, for the picture
    w.grab().save(str(tmp_path / "steered.png"))
    if shots:
        w.grab().save(f"{shots}/steered-run.png")


@pytest.mark.parametrize("answer", ["No", "Stop"])
def test_no_or_stop_at_the_out_of_memory_offer_ends_the_run_and_closes_the_offer(qtbot, window, monkeypatch, answer):
    import torch

    from autogpt_gui.engine.train.trainer import Trainer

    w = window
    w.set_config(RunConfig().with_overrides([*TINY, "train.max_steps=200", "train.on_oom='ask'",
                                             "train.checkpoint_interval=5"]))
    real_loss = Trainer._loss

    def hook(model, x, y):
        if w.worker.trainer.step == 10:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_loss(model, x, y)

    monkeypatch.setattr(Trainer, "_loss", staticmethod(hook))
    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: getattr(w, "oom_box", None) is not None and w.oom_box.isVisible(), timeout=120_000)
    box = w.oom_box
    # the training thread waits on the question; No ends the run, and so does Stop while it is open
    qtbot.mouseClick(box.button(box.StandardButton.No) if answer == "No" else w.controls.stop, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=120_000)
    assert "ran out of memory" in w.error_banner.label.text() and w.charts.steps.n == 10
    assert load_checkpoint(f"{w.run_path}/checkpoints/last.pt")["trainer"]["step"] == 10
