"""Hostile and leftover files: checkpoints that lie about their shape, models too big for the machine,
temp files of killed writers, resuming by file, and runs killed before their first checkpoint."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

from autogpt_gui import cli, paths
from autogpt_gui.engine.run.checkpoints import load_checkpoint
from autogpt_gui.engine.run.runs import Run
from autogpt_gui.engine.session import build_session
from autogpt_gui.errors import CheckpointError


@pytest.fixture
def trained_run(tiny_config):
    cfg = tiny_config("train.max_steps=20", "train.checkpoint_interval=10")
    run = Run.create(cfg, paths.runs_dir())
    build_session(cfg, run).trainer.train()
    return run


def _lying_copy(run: Run, tmp_path, **shape) -> str:
    """A valid pickle whose model_config disagrees with the tensors beside it."""
    state = load_checkpoint(run.checkpoints_dir / "last.pt")
    state["model_config"] = {**state["model_config"], **shape}
    out = run.checkpoints_dir / "step-99999999.pt"
    torch.save(state, out)
    return str(out)


HOSTILE = [dict(n_layer=100_000, n_embd=4096, n_head=32), dict(n_embd=64, n_head=2), dict(vocab_size=10**9)]


@pytest.mark.parametrize("shape", HOSTILE)
def test_sample_export_and_resume_refuse_a_checkpoint_that_lies_about_its_shape(trained_run, tmp_path, capsys, shape):
    bad = _lying_copy(trained_run, tmp_path, **shape)
    for argv in (["sample", bad, "--max-new-tokens", "5"], ["export", bad, str(tmp_path / "out")],
                 ["resume", bad, "--quiet"]):
        t0 = time.perf_counter()
        assert cli.main(argv) == 1, argv
        assert time.perf_counter() - t0 < 2.0, argv
        err = capsys.readouterr().err
        assert "does not match its own model shape" in err and "Traceback" not in err, err


def test_the_playground_refuses_it_too(trained_run, tmp_path):
    from autogpt_gui.ui.worker import generation_job

    bad = _lying_copy(trained_run, tmp_path, n_layer=100_000, n_embd=4096, n_head=32)
    with pytest.raises(CheckpointError, match="claims 100000 layers but holds weights for 2"):
        generation_job(bad, "a", 5, 0.8, None, None)(None)


def test_a_checkpoint_larger_than_memory_is_refused_before_loading_it(trained_run):
    from autogpt_gui.engine.load import checked_model_config

    state = load_checkpoint(trained_run.checkpoints_dir / "last.pt")
    with pytest.raises(CheckpointError, match="needs about .* of memory for its weights but this computer has"):
        checked_model_config(state, "last.pt", memory_limit=1000)


def test_a_model_too_big_for_the_machine_is_refused_in_the_cli_with_estimate_and_limit(capsys):
    code = cli.main(["train", "--set", "model.preset='custom'", "--set", "model.n_layer=2000", "--set",
                     "model.n_embd=4096", "--set", "model.n_head=32", "--set", "train.device='cpu'"])
    err = capsys.readouterr().err
    assert code == 2 and "model.n_layer: training needs about" in err and "but this computer has" in err
    assert not list(paths.runs_dir().iterdir())  # refused before a run folder was made


def test_a_dead_writers_temp_file_goes_and_a_live_writers_stays(trained_run, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ck = trained_run.checkpoints_dir
    leftovers = [ck / f".step-00000030.pt.{dead.pid}.tmp", trained_run.path / f".status.json.{dead.pid}.77.tmp"]
    live = ck / f".step-00000040.pt.{__import__('os').getpid()}.tmp"
    for p in (*leftovers, live):
        p.write_bytes(b"x" * 1000)
    assert cli.main(["runs"]) == 0
    assert not any(p.exists() for p in leftovers) and live.exists()

    leftovers[0].write_bytes(b"x")
    assert cli.main(["resume", str(trained_run.path), "--quiet", "--set", "train.max_steps=22"]) == 0
    assert not leftovers[0].exists() and live.exists()


def test_resume_names_what_is_wrong_with_a_path(tmp_path, capsys):
    import os

    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    link = tmp_path / "dev.pt"
    link.symlink_to("/dev/null")
    for target in (fifo, link):
        assert cli.main(["resume", str(target)]) == 1
        assert "is not a regular file" in capsys.readouterr().err
    assert cli.main(["resume", str(tmp_path / "missing.pt")]) == 1
    assert "does not exist" in capsys.readouterr().err


def _killed_before_first_checkpoint(tiny_config) -> Run:
    cfg = tiny_config("train.max_steps=30")
    run = Run.create(cfg, paths.runs_dir())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run.path / "metrics.jsonl").write_text(json.dumps({"type": "step", "step": 1}) + "\n")
    status = {"status": "running", "pid": dead.pid, "step": 7, "max_steps": 30, "best_val_loss": None}
    (run.path / "status.json").write_text(json.dumps(status))
    return run


def test_a_run_killed_before_its_first_checkpoint_restarts_in_place_from_the_cli(tiny_config, capsys):
    run = _killed_before_first_checkpoint(tiny_config)
    assert run.summary().status == "interrupted"
    assert cli.main(["resume", str(run.path)]) == 1
    assert f"autogpt-gui resume {run.path} --restart" in capsys.readouterr().err
    assert cli.main(["resume", str(run.path), "--restart", "--quiet"]) == 0
    assert "starting" in capsys.readouterr().out
    assert run.summary().status == "finished" and load_checkpoint(run.checkpoints_dir / "last.pt")["trainer"]["step"] == 30
    assert [p.name for p in paths.runs_dir().iterdir()] == [run.id]  # in place: no second folder


def test_resume_with_a_config_whose_model_differs_from_the_checkpoint_says_so(trained_run, capsys):
    cfg = trained_run.config().with_overrides(["model.n_embd=64"])
    cfg.save(trained_run.path / "config.toml")
    assert cli.main(["resume", str(trained_run.path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "last.pt does not fit this model" in err and "size mismatch" in err and "Traceback" not in err


def _lock_as(run: Run, pid: int, host: str | None = None) -> None:
    import socket

    (run.path / "lock").write_text(json.dumps({"host": host or socket.gethostname(), "pid": pid, "since": 0}))


def test_a_second_trainer_on_a_run_being_trained_is_refused_naming_pid_and_host(trained_run, capsys):
    import socket

    other = subprocess.Popen([sys.executable, "-c", "import threading; threading.Event().wait()"])  # until killed
    try:
        _lock_as(trained_run, other.pid)
        config_before = (trained_run.path / "config.toml").read_text()
        assert cli.main(["resume", str(trained_run.path), "--set", "train.max_steps=30", "--quiet"]) == 1
        err = capsys.readouterr().err
        assert f"being trained by process {other.pid} on {socket.gethostname()}" in err
        assert (trained_run.path / "config.toml").read_text() == config_before  # nothing in the folder changed
        _lock_as(trained_run, 4242, host="gpu-node-7")  # another machine's writer (a shared file system)
        assert cli.main(["resume", str(trained_run.path), "--quiet"]) == 1
        assert "process 4242 on gpu-node-7" in capsys.readouterr().err
    finally:
        other.kill()
        other.wait()
    _lock_as(trained_run, other.pid)  # its writer is dead now: the lock is stale and taken over
    assert cli.main(["resume", str(trained_run.path), "--set", "train.max_steps=24", "--quiet"]) == 0
    assert not (trained_run.path / "lock").exists()  # released when the run ended


def test_steps_reach_metrics_jsonl_within_a_second(tiny_config):
    cfg = tiny_config("train.max_steps=12", "train.eval_interval=1000", "train.checkpoint_interval=0")
    run = Run.create(cfg, paths.runs_dir())
    session = build_session(cfg, run)
    seen = {}

    def on_step(m):
        if m.step == 5:
            time.sleep(1.1)  # a slow step: whatever was logged must be on disk by the next one
        if m.step == 6:
            seen["lines"] = (run.path / "metrics.jsonl").read_text().count('"type": "step"')

    session.trainer.on("step", on_step)
    session.trainer.train()
    assert seen["lines"] == 6  # far fewer than the 200-line batches, long before an evaluation


def test_a_run_on_another_machine_reads_running_elsewhere_not_interrupted(trained_run, capsys):
    status = json.loads((trained_run.path / "status.json").read_text())
    status.update(status="running", host="gpu-node-7", pid=4242)
    (trained_run.path / "status.json").write_text(json.dumps(status))
    assert trained_run.summary().status == "running elsewhere"
    assert cli.main(["runs"]) == 0
    assert "running elsewhere" in capsys.readouterr().out
