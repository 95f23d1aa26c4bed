"""Steering a run: live edits, the control file, extend, early stop, and rollback of a diverging step."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from autogpt_gui import cli, paths
from autogpt_gui.engine.run.checkpoints import load_checkpoint
from autogpt_gui.engine.run.runs import Run
from autogpt_gui.engine.session import build_session
from autogpt_gui.engine.train.edits import checked
from autogpt_gui.engine.train.trainer import Trainer
from autogpt_gui.errors import ConfigError


def _records(run_path, kind):
    lines = (run_path / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def test_a_live_learning_rate_edit_applies_next_step_is_recorded_and_survives_resume(tiny_config):
    cfg = tiny_config("train.max_steps=200", "train.checkpoint_interval=50", "train.eval_interval=50",
                      "optim.schedule='cosine'", "optim.lr=1e-3", "optim.min_lr=1e-4", "train.sample_tokens=0")
    run = Run.create(cfg, paths.runs_dir())
    session = build_session(cfg, run)
    tr = session.trainer
    old = tr.schedule
    lrs = {}

    def on_step(m):
        lrs[m.step] = m.lr
        if m.step == 100:
            tr.request("edit", {"optim.lr": 5e-4, "optim.grad_clip": 0.5})

    tr.on("step", on_step)
    tr.train()
    new = tr.schedule
    assert new.lr == 5e-4 and tr.grad_clip == 0.5
    assert lrs[100] == pytest.approx(old(99)) and lrs[101] == pytest.approx(new(100)) and lrs[101] < lrs[100] * 0.6
    marker = [m for m in _records(run.path, "marker") if m["kind"] == "edit"]
    assert len(marker) == 1 and marker[0]["step"] == 100
    assert marker[0]["values"] == {"optim.lr": [1e-3, 5e-4], "optim.grad_clip": [1.0, 0.5]}
    assert load_checkpoint(run.checkpoints_dir / "step-00000150.pt")["extensions"]["edits"] == \
        {"optim.lr": 5e-4, "optim.grad_clip": 0.5}
    # resumed from step 150, the run keeps the edit: same learning rates, same weights as the straight run
    resumed = build_session(run.config(), run, run.checkpoints_dir / "step-00000150.pt")
    again = {}
    resumed.trainer.on("step", lambda m: again.setdefault(m.step, m.lr))
    resumed.trainer.train()
    assert resumed.trainer.schedule.lr == 5e-4 and again == {s: lrs[s] for s in range(151, 201)}
    for a, b in zip(session.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_impossible_live_edits_are_refused_at_their_field(tiny_config):
    cfg = tiny_config()
    for changes, field in (({"optim.lr": float("nan")}, "optim.lr"), ({"optim.lr": 1e308}, "optim.lr"),
                           ({"optim.lr": 1e-5}, "optim.min_lr"),
                           ({"train.eval_interval": 0}, "train.eval_interval"), ({"model.n_layer": 8}, "model.n_layer")):
        with pytest.raises(ConfigError) as err:
            checked(cfg, changes)
        assert err.value.problems[0][0] == field, err.value.problems
    session = build_session(cfg)
    logs = []
    session.trainer.on("log", logs.append)
    session.trainer.on("step", lambda m: m.step == 5 and session.trainer.request("edit", {"optim.lr": float("nan")}))
    session.trainer.train()
    assert session.trainer.schedule.lr == 1e-3 and any("edit refused" in line and "optim.lr" in line for line in logs)


def test_the_control_file_steers_a_run_in_another_process(tiny_config, tmp_path, user_home, capsys, run_files):
    run_dir = tmp_path / "run"
    settings = ["model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
                "train.batch_size=8", "train.max_steps=100000", "train.eval_interval=100000", "train.device='cpu'",
                "train.precision='fp32'", "train.checkpoint_interval=0", "train.sample_tokens=0"]
    proc = subprocess.Popen([sys.executable, "-m", "autogpt_gui", "train", "--out", str(run_dir), "--quiet",
                             *[a for s in settings for a in ("--set", s)]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_files.wait_until(lambda: run_files.records(run_dir, "step"), "the first steps", proc)
        assert cli.main(["control", str(run_dir), "edit", "--set", "optim.lr=nan"]) == 2
        assert "optim.lr" in capsys.readouterr().err
        assert cli.main(["control", str(run_dir), "edit", "--set", "optim.lr=2e-4"]) == 0
        run_files.wait_until(lambda: any(m["kind"] == "edit" for m in run_files.records(run_dir, "marker")),
                             "the edit's marker", proc)
        assert cli.main(["control", str(run_dir), "stop"]) == 0
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "stopped at step" in out, (out, err)
    edit = next(m for m in _records(run_dir, "marker") if m["kind"] == "edit")
    steps = _records(run_dir, "step")
    assert edit["values"]["optim.lr"][1] == 2e-4
    assert all(s["lr"] <= 2e-4 for s in steps if s["step"] > edit["step"] + 1)  # warmup's ramp, then the new peak
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["extensions"]["edits"] == {"optim.lr": 2e-4} and state["trainer"]["step"] == steps[-1]["step"]
    assert cli.main(["control", str(run_dir), "pause"]) == 1
    assert "is not training (stopped)" in capsys.readouterr().err


def test_extending_a_finished_cosine_run_continues_its_rate_and_keeps_learning(tmp_path):
    run_dir = tmp_path / "run"
    settings = ["model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
                "train.batch_size=8", "train.max_steps=300", "train.eval_interval=100", "train.device='cpu'",
                "train.precision='fp32'", "train.sample_tokens=0", "optim.schedule='cosine'", "optim.warmup_steps=10",
                "optim.lr=3e-3", "optim.min_lr=3e-4", "data.source='shakespeare'"]
    assert cli.main(["train", "--out", str(run_dir), "--quiet", *[a for s in settings for a in ("--set", s)]]) == 0
    assert cli.main(["resume", str(run_dir), "--extend", "300", "--quiet"]) == 0
    lr = {s["step"]: s["lr"] for s in _records(run_dir, "step")}
    assert max(lr) == 600 and lr[301] <= lr[300] * 1.000001  # no jump back up at the seam
    assert lr[600] == pytest.approx(3e-4)
    evals = {e["step"]: e["val_loss"] for e in _records(run_dir, "eval")}
    assert evals[600] < evals[300]
    assert any(m["kind"] == "extend" and m["step"] == 300 for m in _records(run_dir, "marker"))
    assert Run(run_dir).config().train.max_steps == 600 and Run(run_dir).summary().status == "finished"


def test_early_stop_ends_a_stalled_run_as_finished_with_its_best_checkpoint(tmp_path, tiny_config):
    # a pattern to learn, then a validation tail of random letters: validation loss soon stops improving
    gen = torch.Generator().manual_seed(0)
    noise = "".join(chr(97 + int(i)) for i in torch.randint(0, 26, (6000,), generator=gen))
    corpus = tmp_path / "stall.txt"
    corpus.write_text("the cat sat on the mat. " * 2200 + noise)
    cfg = tiny_config("data.source='file'", f"data.path='{corpus}'", "data.val_fraction=0.1", "train.max_steps=2000",
                      "train.eval_interval=20", "train.early_stop_patience=3", "optim.lr=3e-3",
                      "train.checkpoint_interval=0", "train.sample_tokens=0")
    run = Run.create(cfg, paths.runs_dir())
    result = build_session(cfg, run).trainer.train()
    assert result.status == "finished" and "early stop" in result.reason and result.step < 2000, result
    evals = _records(run.path, "eval")
    best = min(e["val_loss"] for e in evals)
    assert [e["val_loss"] for e in evals][-3:] and all(e["val_loss"] >= best for e in evals[-3:])
    assert load_checkpoint(run.checkpoints_dir / "best.pt")["trainer"]["best_val_loss"] == pytest.approx(best)
    summary = run.summary()
    assert summary.status == "finished" and "early stop" in summary.reason
    assert any(m["kind"] == "early_stop" for m in _records(run.path, "marker"))


def _batches(loader, skip_at=None, mark=None):
    """The loader's batches; the `skip_at`-th (1-based) is dropped, or handed to mark (the poisoned one)."""
    class Wrapped:
        def __init__(self):
            self.inner = loader

        def __iter__(self):
            for i, (x, y) in enumerate(loader, start=1):
                if i == skip_at:
                    if mark is None:
                        continue
                    mark.append(x)
                yield x, y

        def __len__(self):
            return len(loader)

        def state_dict(self):
            return loader.state_dict()

    return Wrapped()


def test_a_spiking_batch_is_rolled_back_as_if_skipped_with_a_halved_learning_rate(tiny_config, monkeypatch):
    cfg = tiny_config("train.max_steps=80", "train.eval_interval=1000", "train.checkpoint_interval=0",
                      "train.sample_tokens=0", "optim.schedule='constant'")
    poisoned: list = []
    real_loss = Trainer._loss

    def loss_hook(model, x, y):  # the poisoned batch's loss is twenty times what it would be
        logits, loss = real_loss(model, x, y)
        return logits, loss * 20 if any(x is p for p in poisoned) else loss

    monkeypatch.setattr(Trainer, "_loss", staticmethod(loss_hook))
    rolled = build_session(cfg)
    rolled.trainer.train_loader = _batches(rolled.trainer.train_loader, skip_at=50, mark=poisoned)
    markers = []
    rolled.trainer.on("marker", markers.append)
    assert rolled.trainer.train().status == "finished"

    reference = build_session(cfg)  # never sees batch 50; from step 50 on, half the learning rate
    reference.trainer.train_loader = _batches(reference.trainer.train_loader, skip_at=50)
    reference.trainer.on("step", lambda m: m.step == 49 and setattr(reference.trainer, "lr_scale", 0.5))
    reference.trainer.train()
    for a, b in zip(rolled.model.state_dict().values(), reference.model.state_dict().values()):
        assert torch.equal(a, b)
    (rollback,) = [m for m in markers if m.kind == "rollback"]
    assert rollback.step == 49 and "rolled back step 50" in rollback.text and math.isfinite(rollback.values["loss"])
    assert rolled.trainer.lr_scale == 0.5


@pytest.mark.slow
def test_find_lr_suggests_a_rate_within_three_times_the_best_of_three_real_runs(tiny_config, capsys):
    from autogpt_gui.config import RunConfig
    from autogpt_gui.engine.lr_finder import find_lr

    base = RunConfig().with_overrides([
        "model.preset='micro'", "train.max_steps=300", "train.eval_interval=300", "train.eval_batches=10",
        "train.batch_size=8", "train.checkpoint_interval=0", "train.sample_tokens=0", "optim.warmup_steps=30",
        "train.precision='fp32'", "train.device='cpu'", "data.source='shakespeare'"])
    suggestion = find_lr(base).suggestion
    finals = {}
    for lr in (3e-4, 1e-3, 3e-3):
        cfg = base.with_overrides([f"optim.lr={lr}", f"optim.min_lr={lr / 10}"])
        result = build_session(cfg).trainer.train()
        finals[lr] = result.best_val_loss
    best = min(finals, key=finals.get)
    print(f"find-lr suggests {suggestion:.2e}; 300-step validation losses {finals}")
    assert suggestion is not None and best / 3 <= suggestion <= best * 3, (suggestion, finals)
    assert cli.main(["find-lr", "--set", "model.preset='micro'", "--set", "data.source='shakespeare'",
                     "--set", "train.device='cpu'", "--steps", "60"]) == 0
    assert "use it: --set optim.lr=" in capsys.readouterr().out


def test_a_branch_starts_from_a_checkpoint_with_new_settings_and_names_its_parent(tmp_path, capsys):
    from autogpt_gui.ui.charts import STEP_COLUMNS, columns_of

    parent_dir, branch_dir = tmp_path / "parent", tmp_path / "branch"
    settings = ["model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
                "train.batch_size=8", "train.max_steps=200", "train.eval_interval=100", "train.device='cpu'",
                "train.precision='fp32'", "train.sample_tokens=0", "train.checkpoint_interval=100",
                "optim.schedule='constant'"]
    assert cli.main(["train", "--out", str(parent_dir), "--quiet", *[a for s in settings for a in ("--set", s)]]) == 0
    ckpt = parent_dir / "checkpoints" / "step-00000100.pt"
    assert cli.main(["branch", str(ckpt), "--set", "optim.lr=3e-4", "--out", str(branch_dir), "--quiet"]) == 0
    fork = Run(branch_dir).branch()
    assert fork["parent"] == str(parent_dir) and fork["step"] == 100 and fork["checkpoint"] == str(ckpt)
    steps = _records(branch_dir, "step")
    assert steps[0]["step"] == 101 and steps[-1]["step"] == 200 and steps[0]["lr"] == pytest.approx(3e-4)
    parent_steps = _records(parent_dir, "step")
    assert parent_steps[100]["lr"] == pytest.approx(1e-3)  # the parent is untouched
    # the overlay draws the parent from step 1 and the branch from its fork point on
    assert columns_of(steps, STEP_COLUMNS)["step"][0] == 101
    assert Run(branch_dir).config().optim.lr == 3e-4 and Run(parent_dir).config().optim.lr == 1e-3
    summary = Run(branch_dir).summary()
    assert summary.parent == "parent" and summary.fork_step == 100


@pytest.mark.parametrize("loader", ["random", "epochs"])
def test_out_of_memory_halves_the_micro_batch_and_the_loss_curve_goes_on_unchanged(tiny_config, monkeypatch, loader,
                                                                                   shakespeare, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(shakespeare.read_text()[:40_000])  # one epoch: about 70 steps
    length = ["train.max_steps=60"] if loader == "random" else ["train.max_steps=0", "train.epochs=1"]
    cfg = tiny_config(*length, "train.grad_accum=2", "train.eval_interval=1000", "train.checkpoint_interval=0",
                      "train.sample_tokens=0", "data.source='file'", f"data.path='{corpus}'")
    straight = build_session(cfg)
    want = {}
    straight.trainer.on("step", lambda m: want.setdefault(m.step, m.loss))
    straight.trainer.train()

    session = build_session(cfg)
    tr = session.trainer
    real_loss = Trainer._loss

    def allocator_hook(model, x, y):  # the full micro-batch of step 31 does not fit
        if tr.step == 30 and x.shape[0] == 8:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return real_loss(model, x, y)

    monkeypatch.setattr(Trainer, "_loss", staticmethod(allocator_hook))
    got, markers = {}, []
    tr.on("step", lambda m: got.setdefault(m.step, m.loss))
    tr.on("marker", markers.append)
    assert tr.train().status == "finished"
    assert sorted(got) == sorted(want)  # every step, none lost or repeated
    worst = max(abs(got[s] - want[s]) / want[s] for s in want)
    assert worst < 0.01, worst
    assert tr.config.batch_size == 4 and tr.config.grad_accum == 4 and tr.tokens_seen == straight.trainer.tokens_seen
    (oom,) = [m for m in markers if m.kind == "oom"]
    assert oom.step == 30 and oom.values == {"batch_size": [8, 4], "grad_accum": [2, 4]}
    assert tr.state_dict()["extensions"]["oom"] == {"batch_size": 4, "grad_accum": 4}
