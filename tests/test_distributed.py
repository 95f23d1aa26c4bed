"""Data-parallel training under torchrun, on this CPU with gloo: 2 ranks of batch b equal 1 process of 2b."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from autogpt_gui import cli
from autogpt_gui.engine.run.checkpoints import load_checkpoint

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")

TINY = ["model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
        "train.device='cpu'", "train.precision='fp32'", "train.sample_tokens=0", "train.eval_batches=8",
        "data.source='shakespeare'", "optim.warmup_steps=10"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "autogpt_gui"]

FIRST_STEP = """
import sys, torch
from autogpt_gui.config import RunConfig
from autogpt_gui.engine.train import distributed
from autogpt_gui.engine.session import build_session
r = distributed.setup("cpu")
session = build_session(RunConfig().with_overrides(sys.argv[2:]))
tr = session.trainer
tr.prepare()
x, y = next(iter(tr.train_loader))
tr._micro_step(x, y)  # forward and backward of step 1: DistributedDataParallel averages the gradients
if r.main:
    torch.save({n: p.grad.clone() for n, p in session.model.named_parameters()}, sys.argv[1])
distributed.leave(0)
"""


HELD = """
import sys
from autogpt_gui import cli
from autogpt_gui.engine.train import distributed
from autogpt_gui.engine.train.trainer import Trainer

real_train = Trainer.train


def train(self, *args, **kwargs):
    if distributed.ranks().main:  # rank 0 pauses; the other ranks wait for it in their next all-reduce
        self.on("step", lambda m: m.step == 20 and self.pause())
        self.on("eval", lambda e: self.pause())
    return real_train(self, *args, **kwargs)


Trainer.train = train
cli.run()
"""


def _paused_at(run_files, run_dir, step: int, proc) -> None:
    paused = run_files.wait_until(lambda: _status(run_dir).get("status") == "paused" and _status(run_dir),
                                  f"the run to pause at step {step}", proc)
    assert paused["step"] == step, paused


def _status(run_dir) -> dict:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def _sets(*settings: str) -> list[str]:
    return [a for s in (*TINY, *settings) for a in ("--set", s)]


def _run(cmd: list[str], env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def _records(run_dir, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["type"] == kind]


def _weights(path) -> dict:
    return load_checkpoint(path)["model"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", [[], ["model.arch='llama'", "model.n_kv_head=1", "model.qk_norm=true"]],
                         ids=["gpt2", "llama"])
def test_two_ranks_compute_the_gradients_of_one_process_with_twice_the_batch(tmp_path, kind):
    """Both block kinds: the llama kind (grouped-query attention, rotary positions, q/k norm) as GPT-2's."""
    script = tmp_path / "first_step.py"
    script.write_text(FIRST_STEP)
    settings = [*TINY, *kind, "train.max_steps=100"]
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
                str(tmp_path / "two.pt"), *settings, "train.batch_size=4"])
    assert two.returncode == 0, two.stderr[-3000:]
    one = _run([sys.executable, str(script), str(tmp_path / "one.pt"), *settings, "train.batch_size=8"])
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = torch.load(tmp_path / "two.pt"), torch.load(tmp_path / "one.pt")
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-5, worst


@pytest.mark.slow
def test_a_two_rank_run_matches_one_process_stops_from_outside_and_resumes_on_any_number_of_ranks(tmp_path, run_files):
    two, one = tmp_path / "two", tmp_path / "one"
    steps = ["train.max_steps=200", "train.eval_interval=100", "train.checkpoint_interval=100"]
    done = _run([*TORCHRUN, "train", "--out", str(two), "--quiet", *_sets(*steps, "train.batch_size=4")])
    assert done.returncode == 0, done.stderr[-3000:]
    assert cli.main(["train", "--out", str(one), "--quiet", *_sets(*steps, "train.batch_size=8")]) == 0
    val_two, val_one = _records(two, "eval")[-1]["val_loss"], _records(one, "eval")[-1]["val_loss"]
    assert abs(val_two - val_one) / val_one < 1e-3, (val_two, val_one)  # the same windows, split between ranks
    assert _records(two, "step")[-1]["tokens_seen"] == _records(one, "step")[-1]["tokens_seen"] == 200 * 8 * 32
    assert sorted(p.name for p in two.iterdir() if p.suffix == ".jsonl") == ["metrics.jsonl"]  # rank 0's only
    assert len(_records(two, "step")) == 200
    assert json.loads((two / "status.json").read_text())["ranks"] == 2  # with host and pid

    # stopped from outside through the control file: both ranks stop at one step, rank 0 saves it. Rank 0 holds the
    # run (paused) at step 20 and after each evaluation, so that it is still running whenever a request arrives
    stopped = tmp_path / "stopped"
    launcher = tmp_path / "held.py"
    launcher.write_text(HELD)
    proc = subprocess.Popen([*TORCHRUN[:-2], str(launcher), "train", "--out", str(stopped), "--quiet",
                             *_sets("train.max_steps=200", "train.eval_interval=1000", "train.batch_size=4",
                                    "train.checkpoint_interval=0")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _paused_at(run_files, stopped, 20, proc)
        assert cli.main(["control", str(stopped), "evaluate"]) == 0  # every rank evaluates its slice, at one step
        assert cli.main(["control", str(stopped), "resume"]) == 0
        run_files.wait_until(lambda: run_files.records(stopped, "eval"), "the evaluation", proc)
        _paused_at(run_files, stopped, 21, proc)
        assert len(run_files.records(stopped, "eval")) == 1 and proc.poll() is None  # no rank waits alone
        assert cli.main(["control", str(stopped), "stop"]) == 0
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its ranks
    assert proc.returncode == 0 and "stopped at step" in out, err[-3000:]
    at = load_checkpoint(stopped / "checkpoints" / "last.pt")["trainer"]["step"]
    assert 20 <= at < 200
    # resumed by one process with twice the batch, and by two ranks: both reach 200 with the straight weights
    assert cli.main(["resume", str(stopped), "--quiet", "--set", "train.batch_size=8"]) == 0  # one process
    assert load_checkpoint(stopped / "checkpoints" / "last.pt")["trainer"]["step"] == 200
    straight = _weights(two / "checkpoints" / "last.pt")
    resumed = _weights(stopped / "checkpoints" / "last.pt")
    assert all(torch.allclose(straight[k], resumed[k], atol=1e-4) for k in straight)
    # and the one-process run goes on with two ranks
    done = _run([*TORCHRUN, "resume", str(one), "--quiet", "--set", "train.max_steps=230",
                 "--set", "train.batch_size=4"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert _records(one, "step")[-1]["step"] == 230


@pytest.mark.slow
def test_resume_with_the_same_ranks_is_exact_and_a_killed_rank_ends_the_job(tmp_path, run_files):
    straight, pieces = tmp_path / "straight", tmp_path / "pieces"
    base = ["train.eval_interval=20", "train.batch_size=4", "train.checkpoint_interval=0", "optim.schedule='constant'",
            "model.dropout=0.1", "train.sample_tokens=10"]  # random streams in use: dropout, and rank 0 samples
    done = _run([*TORCHRUN, "train", "--out", str(straight), "--quiet", *_sets("train.max_steps=60", *base)])
    assert done.returncode == 0, done.stderr[-3000:]
    done = _run([*TORCHRUN, "train", "--out", str(pieces), "--quiet", *_sets("train.max_steps=30", *base)])
    assert done.returncode == 0, done.stderr[-3000:]
    done = _run([*TORCHRUN, "resume", str(pieces), "--quiet", "--set", "train.max_steps=60"])
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = _weights(straight / "checkpoints" / "last.pt"), _weights(pieces / "checkpoints" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*TORCHRUN, "train", "--out", str(killed), "--quiet",
                             *_sets("train.max_steps=100000", "train.eval_interval=1000", "train.batch_size=4",
                                    "train.checkpoint_interval=20")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    run_files.wait_until((killed / "checkpoints" / "last.pt").exists, "the first checkpoint", proc)
    workers = subprocess.run(["pgrep", "-f", f"autogpt_gui train --out {killed}"], capture_output=True,
                             text=True).stdout.split()
    ranks = [int(p) for p in workers if int(p) != proc.pid]
    assert len(ranks) == 2, workers
    os.kill(max(ranks), signal.SIGKILL)  # one rank dies
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and ("SIGKILL" in err or "Signal 9" in err or "exitcode" in err), err[-3000:]
    assert load_checkpoint(killed / "checkpoints" / "last.pt")["trainer"]["step"] >= 20  # intact and loadable


def test_launch_command_prints_a_torchrun_line_that_trains_and_a_slurm_script(tmp_path, capsys):
    out_dir = tmp_path / "launched"
    assert cli.main(["launch-command", "--nproc", "2", "--out", str(out_dir),
                     *_sets("train.max_steps=20", "train.eval_interval=10", "train.batch_size=4")]) == 0
    printed = capsys.readouterr().out
    line = next(ln for ln in printed.splitlines() if "torch.distributed.run" in ln and not ln.startswith("srun"))
    assert "--nproc_per_node=2" in line and "#SBATCH --gpus-per-node=2" in printed and "srun bash -c" in printed
    done = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _records(out_dir, "step")[-1]["step"] == 20 and _records(out_dir, "step")[-1]["tokens_seen"] == 20 * 8 * 32
