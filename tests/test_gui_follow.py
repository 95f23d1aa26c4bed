"""Following a run that another process trains: the window fills in and steers it through the run folder."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt

from autogpt_gui.engine.run import control
from autogpt_gui.ui.app import make_app
from autogpt_gui.ui.main_window import MainWindow

SETTINGS = ["model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
            "train.batch_size=8", "train.max_steps=1000000", "train.eval_interval=20", "train.eval_batches=2",
            "train.device='cpu'", "train.precision='fp32'", "train.checkpoint_interval=50", "train.sample_tokens=10"]


def _status(run_dir) -> dict:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def _samples(run_dir) -> list[dict]:
    try:
        text = (run_dir / "samples.jsonl").read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]  # a line being written waits


def _window(qtbot):
    make_app()
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    return w


@pytest.mark.slow
def test_a_window_follows_and_steers_a_run_of_another_process_and_leaves_it_training(qtbot, tmp_path, user_home):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "autogpt_gui", "train", "--out", str(run_dir), "--quiet",
                             *[a for s in SETTINGS for a in ("--set", s)]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        qtbot.waitUntil(lambda: _status(run_dir).get("status") == "running", timeout=120_000)
        w = _window(qtbot)
        w.follow(str(run_dir))
        qtbot.waitUntil(lambda: w.charts.steps.n > 0 and w.charts.evals.n > 0, timeout=120_000)
        first = w.charts.steps.n
        qtbot.waitUntil(lambda: w.charts.steps.n > first and "step 20" in w.samples.history.toPlainText(),
                        timeout=120_000)
        qtbot.waitUntil(lambda: any(r["kind"] == "checkpoint" for r in w.charts.markers.records), timeout=120_000)

        qtbot.mouseClick(w.controls.pause, Qt.LeftButton)  # the other process pauses between two steps
        qtbot.waitUntil(lambda: _status(run_dir).get("status") == "paused", timeout=120_000)
        qtbot.waitUntil(lambda: w.controls.pause.text() == "Resume", timeout=120_000)
        paused_at = _status(run_dir)["step"]
        before = len(_samples(run_dir))  # a request answered while paused: the run is held, not just slow
        control.send(run_dir, "sample")
        qtbot.waitUntil(lambda: len(_samples(run_dir)) > before, timeout=120_000)
        assert _samples(run_dir)[-1]["step"] == paused_at
        assert _status(run_dir)["step"] == paused_at and proc.poll() is None
        qtbot.mouseClick(w.controls.pause, Qt.LeftButton)  # now labelled Resume
        qtbot.waitUntil(lambda: _status(run_dir).get("step", 0) > paused_at, timeout=120_000)

        w.close()  # closing the window stops the following, never the run
        step = _status(run_dir)["step"]
        qtbot.waitUntil(lambda: _status(run_dir).get("step", 0) > step + 5, timeout=120_000)
        assert proc.poll() is None and _status(run_dir)["status"] == "running"

        again = _window(qtbot)
        again.follow(str(run_dir))
        qtbot.waitUntil(lambda: again.charts.steps.n > 0, timeout=120_000)
        qtbot.mouseClick(again.controls.stop, Qt.LeftButton)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "stopped at step" in out, (out, err)
        qtbot.waitUntil(lambda: again.worker is None and "Stopped at step" in again.controls.status.text(),
                        timeout=120_000)
        again.close()
    finally:
        proc.kill()
        proc.communicate()


@pytest.mark.slow
def test_start_on_all_gpus_launches_a_torchrun_group_and_follows_it(qtbot, user_home, monkeypatch):
    from autogpt_gui.config import RunConfig
    from autogpt_gui.engine.run.runs import Run
    from autogpt_gui.engine.train.distributed import torchrun_command
    from autogpt_gui.ui import worker as workers

    launched = []

    def on_this_cpu(run_path, nproc):  # no GPUs here: the same group, each rank on the CPU with gloo
        launched.append(subprocess.Popen(torchrun_command(nproc) + ["resume", run_path, "--restart", "--quiet",
                                                                     "--set", "train.device='cpu'"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        return launched[-1]

    monkeypatch.setattr(workers, "launch_group", on_this_cpu)
    w = _window(qtbot)
    gib = 80 * 2**30
    w.config_panel.set_devices([("auto", "Automatic", gib), ("cuda:0", "GPU 0: H100 (80 GiB)", gib),
                                ("cuda:1", "GPU 1: H100 (80 GiB)", gib), ("cuda:all", "All 2 GPUs (data-parallel)", gib),
                                ("cpu", "CPU", gib)])
    w.set_config(RunConfig().with_overrides([s for s in SETTINGS if "max_steps" not in s and "device" not in s]
                                            + ["train.max_steps=40", "optim.warmup_steps=4", "train.device='cuda:all'"]))
    combo = w.config_panel.editors["train.device"]
    assert combo.currentData() == "cuda:all" and w.controls.start.isEnabled(), w.controls.why.text()
    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    assert len(launched) == 1 and "--nproc_per_node=2" in " ".join(launched[0].args)
    assert getattr(w.worker, "follows", False)
    qtbot.waitUntil(lambda: w.worker is None and "Finished at step 40" in w.controls.status.text(), timeout=120_000)
    assert w.charts.steps.n == 40
    run = Run(w.run_path)
    steps, _ = run.read_metrics()
    assert steps[-1]["tokens_seen"] == 40 * 8 * 32 * 2  # both ranks' tokens
    assert launched[0].wait(300) == 0  # the group ended cleanly once the run finished
    w.close()


def test_the_runs_tab_tells_running_here_elsewhere_and_interrupted_and_follows_a_live_one(qtbot, user_home):
    import socket

    from autogpt_gui import paths
    from autogpt_gui.config import RunConfig
    from autogpt_gui.engine.run.runs import Run
    from autogpt_gui.engine.session import build_session

    cfg = RunConfig().with_overrides([*[s for s in SETTINGS if "max_steps" not in s], "train.max_steps=20",
                                      "optim.warmup_steps=2"])
    runs = {}
    for name in ("here", "elsewhere", "gone"):
        run = Run.create(cfg, paths.runs_dir())
        build_session(cfg, run).trainer.train()
        runs[name] = run
    # the "running here" run's writer: alive until killed, however long the test takes
    other = subprocess.Popen([sys.executable, "-c", "import threading; threading.Event().wait()"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        for name, host, pid in (("here", socket.gethostname(), other.pid), ("elsewhere", "gpu-node-7", 4242),
                                ("gone", socket.gethostname(), dead.pid)):
            path = runs[name].path / "status.json"
            path.write_text(json.dumps({**json.loads(path.read_text()), "status": "running", "host": host,
                                        "pid": pid}))
        w = _window(qtbot)
        w.tabs.setCurrentWidget(w.runs)
        w.runs.refresh()
        shown = {w.runs.table.item(i, 0).data(256): w.runs.table.item(i, 5).text()
                 for i in range(w.runs.table.rowCount())}
        assert [shown[str(runs[n].path)] for n in ("here", "elsewhere", "gone")] == \
            ["running", "running elsewhere", "interrupted"]
        w.runs.select_run(str(runs["gone"].path))
        assert not w.runs.follow_btn.isEnabled() and w.runs.resume_btn.isEnabled()
        w.runs.select_run(str(runs["elsewhere"].path))
        assert w.runs.follow_btn.isEnabled() and not w.runs.resume_btn.isEnabled()
        qtbot.mouseClick(w.runs.follow_btn, Qt.LeftButton)  # its charts fill from the shared run folder
        qtbot.waitUntil(lambda: w.charts.steps.n == 20 and getattr(w.worker, "follows", False), timeout=120_000)
        w.close()
    finally:
        other.kill()
        other.wait()
