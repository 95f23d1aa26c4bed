"""The run folder as one schema: its file names, JSON-lines files, status, lock and the run's start have one
owner each; and a multi-machine launch needs nothing but that folder."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest

from autogpt_gui import cli
from autogpt_gui.engine.run import layout
from autogpt_gui.engine.run.jsonl import JsonlTail, append
from autogpt_gui.engine.run.lock import RunLocked
from autogpt_gui.engine.run.runs import Run
from autogpt_gui.engine.run.status import RunStarted

PACKAGE = Path(cli.__file__).parent


def test_only_the_layout_spells_the_names_of_a_run_folders_files():
    names = [layout.LAST, layout.BEST, layout.METRICS, layout.SAMPLES, layout.STATUS, layout.CONTROL]
    spelled = re.compile("|".join(re.escape(f'"{n}"') for n in [*names, layout.CHECKPOINTS, layout.LOCK]))
    found = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py") if p.name != "layout.py"
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if spelled.search(line)]
    assert found == []


def test_the_tailer_waits_for_a_line_being_written_and_skips_a_damaged_one(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = JsonlTail(path)
    assert tail.records() == []  # no file yet
    append(path, [{"step": 1}])
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"step": 2')  # a writer in the middle of a line
    assert tail.records() == [{"step": 1}]
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('}\nnot json\n{"step": 3}\n')
    assert tail.records() == [{"step": 2}, {"step": 3}]
    assert JsonlTail(path, at_end=True).records() == []  # the control file's view: only what comes later


def test_the_worker_and_the_follower_share_one_declaration_of_their_signals():
    from PySide6.QtCore import Signal

    from autogpt_gui.ui.follower import RunFollower
    from autogpt_gui.ui.run_signals import RunSignals
    from autogpt_gui.ui.worker import TrainingWorker

    assert issubclass(TrainingWorker, RunSignals) and issubclass(RunFollower, RunSignals)
    shared = {k for k, v in vars(RunSignals).items() if isinstance(v, Signal)}
    assert {"started", "stepped", "evaluated", "state_changed", "finished", "marked"} <= shared
    for cls in (TrainingWorker, RunFollower):
        assert not shared & {k for k, v in vars(cls).items() if isinstance(v, Signal)}, cls


def test_a_followed_run_announces_its_start_with_the_fields_of_the_worker(tiny_config, qtbot):
    from autogpt_gui import paths
    from autogpt_gui.ui.follower import RunFollower

    run = Run.create(tiny_config(), paths.runs_dir())
    follower = RunFollower(run)
    with qtbot.waitSignal(follower.started, timeout=10_000) as got:
        follower.start()
    follower.stop_following()
    assert set(got.args[0]) == {f.name for f in fields(RunStarted)} and got.args[0]["follows"] is True
    assert got.args[0]["run_id"] == run.id


def test_the_lock_is_held_from_the_build_until_the_run_ends(tiny_config):
    from autogpt_gui import paths
    from autogpt_gui.engine.session import build_session

    cfg = tiny_config("train.max_steps=6", "train.checkpoint_interval=0", "train.sample_tokens=0")
    run = Run.create(cfg, paths.runs_dir())
    session = build_session(cfg, run)
    assert run.files.lock.is_file()  # built, not yet trained: a second trainer is refused
    with pytest.raises(RunLocked), Run(run.path).writing():
        pass
    seen = {}
    session.trainer.on("step", lambda m: seen.setdefault("held", run.files.lock.is_file()))
    assert session.trainer.train().status == "finished"
    assert seen["held"] and not run.files.lock.exists()


def test_a_build_that_fails_frees_the_folder_and_says_why_in_its_status(tiny_config, tmp_path):
    from autogpt_gui import paths
    from autogpt_gui.engine.session import build_session
    from autogpt_gui.errors import AutoGPTError

    cfg = tiny_config("data.source='file'", f"data.path='{tmp_path / 'missing.txt'}'")
    run = Run.create(cfg, paths.runs_dir())
    with pytest.raises(AutoGPTError), run.writing():  # the window's and the command line's hold
        build_session(cfg, run)
    assert not run.files.lock.exists()
    status = run.read_status()
    assert status["status"] == "failed" and "missing.txt" in status["reason"]


def test_extend_is_decided_while_the_session_is_built(tiny_config):
    from autogpt_gui import paths
    from autogpt_gui.engine.session import build_session

    cfg = tiny_config("train.max_steps=10", "train.checkpoint_interval=0", "train.sample_tokens=0")
    run = Run.create(cfg, paths.runs_dir())
    build_session(cfg, run).trainer.train()
    session = build_session(run.config(), run, run.files.last, extend=6)
    assert session.trainer.max_steps == 16 and session.config.train.max_steps == 16
    assert run.config().train.max_steps == 16  # config.toml says how long the run now is
    assert [m["kind"] for m in run.read_markers()][-2:] == ["resumed", "extend"]
    assert session.trainer.train().step == 16


def test_launch_command_for_many_machines_needs_a_shared_run_folder(capsys):
    assert cli.main(["launch-command", "--nproc", "2", "--nnodes", "2"]) == 2
    assert "--out" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_multi_machine_line_trains_from_anywhere_with_only_the_run_folder(tmp_path, capsys):
    out = tmp_path / "shared" / "big"
    tiny = ["model.preset='custom'", "model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
            "train.device='cpu'", "train.precision='fp32'", "train.sample_tokens=0", "train.eval_batches=2",
            "data.source='shakespeare'", "train.max_steps=6", "train.eval_interval=3", "train.batch_size=4",
            "train.checkpoint_interval=3", "optim.warmup_steps=2"]
    assert cli.main(["launch-command", "--nproc", "2", "--nnodes", "2", "--out", str(out),
                     *[a for s in tiny for a in ("--set", s)]]) == 0
    printed = capsys.readouterr().out
    line = next(ln for ln in printed.splitlines() if "torch.distributed.run" in ln and not ln.startswith("srun"))
    assert "--nnodes=2" in line and "$NODE_RANK" in line and f"resume {out} --restart" in line
    assert (out / layout.CONFIG).is_file() and "launch_config" not in printed  # nothing of this machine's
    # one machine plays both: nnodes 1, its own address, a free port; another folder, another user home
    local = line.replace("--nnodes=2", "--nnodes=1").replace("$MASTER_ADDR:29500", f"127.0.0.1:{_free_port()}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "NODE_RANK": "0", "AUTOGPT_GUI_HOME": str(tmp_path / "another-home")}
    done = subprocess.run(local, shell=True, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = [json.loads(ln) for ln in (out / layout.METRICS).read_text().splitlines() if '"type": "step"' in ln]
    assert steps[-1]["step"] == 6 and steps[-1]["tokens_seen"] == 6 * 8 * 32  # 2 ranks of 4
    assert Run(out).read_status()["status"] == "finished" and (out / layout.CHECKPOINTS / layout.LAST).is_file()
