"""optim.name = "muon": Muon on the hidden matrices, AdamW on the rest, each at its own rate, everywhere a
rate matters (schedule, live edits, rollback, resume, ranks, the LR finder)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from autogpt_gui import paths
from autogpt_gui.config import RunConfig
from autogpt_gui.engine.lr_finder import find_lr
from autogpt_gui.engine.run.runs import Run
from autogpt_gui.engine.session import build_session
from autogpt_gui.engine.train import optimizers
from autogpt_gui.errors import CheckpointError, ConfigError

MUON = ("optim.name='muon'", "optim.lr=2e-3", "optim.min_lr=2e-4", "optim.muon_lr=0.03")


def _groups(optimizer) -> list[tuple[float, bool]]:
    """(lr, is Muon's) of every group, in order."""
    muon = {id(g) for g in optimizer.muon.param_groups}
    return [(g["lr"], id(g) in muon) for g in optimizer.param_groups]


def test_muon_takes_the_blocks_matrices_and_adamw_the_rest_for_both_block_kinds(tiny_config):
    for kind in ((), ("model.arch='llama'", "model.n_kv_head=1")):
        session = build_session(tiny_config(*MUON, *kind))
        opt = session.optimizer
        assert isinstance(opt, optimizers.MuonWithAdamW)
        in_muon = {id(p) for g in opt.muon.param_groups for p in g["params"]}
        for name, p in session.model.named_parameters():
            expected = p.dim() == 2 and name.startswith("blocks.")
            assert (id(p) in in_muon) == expected, name
        assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in session.model.parameters()}


def test_our_muon_steps_as_torch_muon_does_with_fp32_batched_orthogonalisation():
    """optimizers.Muon is torch.optim.Muon but for the precision of Newton-Schulz (fp32 here, bf16 in torch):
    the same updates within bf16's rounding, the same state (so either can resume the other), decay applied."""
    torch.manual_seed(0)
    shapes = [(96, 32), (32, 32), (96, 32), (32, 128)]  # two of one shape (stacked), tall, square and wide
    ours = [torch.nn.Parameter(torch.randn(*s)) for s in shapes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    starts = [p.detach().clone() for p in ours]
    opt_ours = optimizers.Muon(ours, lr=0.02, weight_decay=0.1)
    opt_theirs = torch.optim.Muon(theirs, lr=0.02, weight_decay=0.1)
    for _ in range(3):
        grads = [torch.randn(*s) for s in shapes]
        for params, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
    for a, b, start in zip(ours, theirs, starts):
        moved, apart = (b.detach() - start).norm().item(), (b.detach() - a.detach()).norm().item()
        assert moved > 0.01 and apart < 0.02 * moved, (moved, apart)  # bf16's rounding, not another update
    state_ours, state_theirs = opt_ours.state_dict(), opt_theirs.state_dict()
    assert state_ours["param_groups"][0].keys() == state_theirs["param_groups"][0].keys()
    for k in state_theirs["state"]:
        assert torch.equal(state_ours["state"][k]["momentum_buffer"], state_theirs["state"][k]["momentum_buffer"])


def test_both_rates_follow_the_schedule_in_their_ratio_and_the_muon_run_learns(tiny_config):
    session = build_session(tiny_config(*MUON, "train.max_steps=60", "optim.schedule='cosine'"))
    seen = {}
    session.trainer.on("step", lambda m: seen.setdefault(m.step, _groups(session.optimizer)))
    result = session.trainer.train()
    for step, groups in seen.items():
        adamw = {lr for lr, is_muon in groups if not is_muon}
        muon = {lr for lr, is_muon in groups if is_muon}
        assert len(adamw) == len(muon) == 1
        assert muon.pop() == pytest.approx(adamw.pop() * 15), step  # 0.03 / 2e-3
    assert seen[60][0][0] < seen[10][0][0]  # cosine: the rates decayed, together
    assert result.best_val_loss < 3.6  # from ln(65) = 4.17 at the start


def test_a_muon_run_resumes_bitwise_and_a_live_lr_edit_moves_both_rates(tiny_config):
    cfg = tiny_config(*MUON, "train.max_steps=40", "model.dropout=0.1", "train.checkpoint_interval=0",
                      "train.sample_tokens=0", "train.grad_accum=2")

    def edit_at_10(session):
        session.trainer.on("step", lambda m: m.step == 10 and session.trainer.request("edit", {"optim.lr": 1e-3}))

    straight = build_session(cfg)
    edit_at_10(straight)
    lrs = {}
    straight.trainer.on("step", lambda m: lrs.setdefault(m.step, _groups(straight.optimizer)))
    straight.trainer.train()
    before, after = lrs[10], lrs[11]
    factor = after[0][0] / before[0][0]
    assert 0.4 < factor < 0.6  # halved, give or take a step of the cosine
    assert all(b[0] * factor == pytest.approx(a[0]) for a, b in zip(after, before))  # Muon's too, in ratio

    run = Run.create(cfg, paths.runs_dir())
    first = build_session(cfg, run)
    edit_at_10(first)
    first.trainer.on("step", lambda m: m.step == 20 and first.trainer.stop())
    assert first.trainer.train().step == 20
    resumed = build_session(run.config(), run, run.checkpoints_dir / "last.pt")
    assert resumed.trainer.train().step == 40
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    sa, sb = straight.optimizer.state_dict(), resumed.optimizer.state_dict()
    for part in ("adamw", "muon"):
        assert sa[part]["state"].keys() == sb[part]["state"].keys()
        for k, state in sa[part]["state"].items():
            for name, value in state.items():
                assert torch.equal(value, sb[part]["state"][k][name]), (part, k, name)


def test_a_checkpoint_of_another_optimizer_is_refused_at_optim_name(tiny_config):
    cfg = tiny_config("train.max_steps=6", "train.sample_tokens=0")
    run = Run.create(cfg, paths.runs_dir())
    build_session(cfg, run).trainer.train()
    with pytest.raises(CheckpointError) as err:
        build_session(tiny_config(*MUON, "train.max_steps=6"), None, run.checkpoints_dir / "last.pt")
    assert err.value.field == "optim.name" and "optimizer it was trained with" in str(err.value)


def test_without_torch_muon_the_choice_is_refused_with_a_message(tiny_config, monkeypatch):
    monkeypatch.delattr(torch.optim, "Muon")
    with pytest.raises(ConfigError) as err:
        build_session(tiny_config(*MUON))
    assert err.value.field == "optim.name" and "torch 2.9 or newer" in str(err.value)


def test_a_lora_fine_tune_with_muon_trains_its_adapters_with_adamw(tiny_gpt2):
    cfg = RunConfig().with_overrides([
        f"model.init='{tiny_gpt2}'", "model.finetune='lora'", "model.lora_rank=4", "data.source='shakespeare'",
        "data.tokenizer='model'", "model.block_size=32", "train.batch_size=4", "train.eval_batches=2",
        "optim.warmup_steps=1", "train.precision='fp32'", "train.sample_tokens=0", "train.device='cpu'",
        "train.checkpoint_interval=0", "train.max_steps=2", *MUON])
    session = build_session(cfg)
    assert isinstance(session.optimizer, torch.optim.AdamW)  # the frozen base leaves Muon no matrix to train
    assert session.trainer.train().step == 2


def test_the_lr_finder_sweeps_both_rates_in_their_ratio(tiny_config):
    cfg = tiny_config(*MUON, "train.sample_tokens=0")
    seen = []
    session_rates = []
    real = optimizers.MuonWithAdamW.step

    def step(self, closure=None):
        session_rates.append(_groups(self))
        return real(self, closure)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(optimizers.MuonWithAdamW, "step", step)
        sweep = find_lr(cfg, start=1e-5, end=1e-1, steps=40, progress=lambda i, lr, loss: seen.append(lr))
    assert len(session_rates) == len(seen) >= 20
    for lr, groups in zip(seen, session_rates):
        for rate, is_muon in groups:
            assert rate == pytest.approx(lr * 15 if is_muon else lr)
    assert sweep.muon_ratio == pytest.approx(15)
    if sweep.suggestion is not None:
        assert sweep.muon_suggestion == pytest.approx(sweep.suggestion * 15)
        assert "Muon learning rate" in sweep.describe()


RANKS = """
import sys, torch
from autogpt_gui.config import RunConfig
from autogpt_gui.engine.train import distributed
from autogpt_gui.engine.session import build_session
r = distributed.setup("cpu")
session = build_session(RunConfig().with_overrides(sys.argv[2:]))
session.trainer.train()
if r.main:
    torch.save(session.model.state_dict(), sys.argv[1])
distributed.leave(0)
"""


@pytest.mark.slow
def test_two_ranks_train_muon_as_one_process_with_twice_the_batch(tmp_path):
    """Under torchrun with gloo: 6 Muon steps of 2 ranks x 4 sequences equal one process of 8 (three torch
    start-ups: ~20 s here, so slow). Muon orthogonalises in bf16, so the ranks' all-reduced gradients (equal
    to one process's up to float rounding) give updates equal up to bf16 rounding, not bit for bit: the gap
    must be tiny next to the one that different data makes (one process of 4, rank 0's half alone)."""
    script = tmp_path / "ranks.py"
    script.write_text(RANKS)
    settings = ["model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=32",
                "model.block_size=32", "train.device='cpu'", "train.precision='fp32'", "train.sample_tokens=0",
                "train.eval_batches=2", "train.eval_interval=100", "train.checkpoint_interval=0",
                "data.source='shakespeare'", "optim.warmup_steps=2", "train.max_steps=6", *MUON]

    def run(name: str, batch: int, ranks: int) -> dict:
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"] if ranks > 1 else []
        done = subprocess.run([sys.executable, *launcher, str(script), str(tmp_path / name), *settings,
                               f"train.batch_size={batch}"], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ))
        assert done.returncode == 0, done.stderr[-3000:]
        return torch.load(tmp_path / name)

    two, one, half = run("two.pt", 4, 2), run("one.pt", 8, 1), run("half.pt", 4, 1)
    gap = max((two[k] - one[k]).abs().max().item() for k in one)
    other_data = max((half[k] - one[k]).abs().max().item() for k in one)
    assert gap < other_data / 10, (gap, other_data)
