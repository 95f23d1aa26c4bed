"""Resume is exact: 30 + 30 steps through a checkpoint equal 60 steps straight, bit for bit."""
import torch

from autogpt_gui import paths
from autogpt_gui.engine.run.runs import Run
from autogpt_gui.engine.session import build_session


def _train(cfg, run=None, resume=None, stop_at=None):
    session = build_session(cfg, run, resume)
    losses = {}

    def on_step(m):
        losses[m.step] = m.loss
        if stop_at and m.step == stop_at:
            session.trainer.stop()

    session.trainer.on("step", on_step)
    result = session.trainer.train()
    return session, losses, result


def test_resumed_run_equals_uninterrupted_run(tiny_config):
    # dropout and a random-window loader exercise every RNG the checkpoint has to carry
    cfg = tiny_config("train.max_steps=60", "model.dropout=0.1", "train.eval_interval=10",
                      "train.checkpoint_interval=0", "optim.schedule='cosine'", "train.grad_accum=2")
    straight, straight_losses, _ = _train(cfg)

    run = Run.create(cfg, paths.runs_dir())
    _, first_losses, first = _train(cfg, run, stop_at=30)
    assert first.status == "stopped" and first.step == 30
    ckpt = run.checkpoints_dir / "last.pt"
    resumed, second_losses, result = _train(run.config(), run, resume=ckpt)
    assert result.status == "finished" and resumed.trainer.step == 60

    assert {**first_losses, **second_losses} == straight_losses
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    sa, sb = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        for name in sa[k]:
            assert torch.equal(sa[k][name], sb[k][name]), (k, name)


def test_resume_reports_where_it_continues(tiny_config):
    cfg = tiny_config("train.max_steps=20", "train.checkpoint_interval=10")
    run = Run.create(cfg, paths.runs_dir())
    _train(cfg, run)
    session = build_session(cfg, run, run.checkpoints_dir / "step-00000010.pt")
    logs = []
    session.trainer.on("log", logs.append)
    session.trainer.load_state_dict(__import__("autogpt_gui.engine.run.checkpoints", fromlist=["x"]).load_checkpoint(
        run.checkpoints_dir / "step-00000010.pt"))
    assert session.trainer.step == 10
    assert any("resumed at step 10" in line and "tokens seen" in line for line in logs)


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tiny_config, monkeypatch):
    import pytest

    from autogpt_gui.engine.run.checkpoints import load_checkpoint
    from autogpt_gui.engine.train.trainer import Trainer
    from autogpt_gui.errors import TrainingError

    cfg = tiny_config("train.max_steps=40", "train.checkpoint_interval=10", "train.eval_interval=10")
    run = Run.create(cfg, paths.runs_dir())
    session = build_session(cfg, run)
    real_loss = Trainer._loss

    def poisoned(model, x, y):
        logits, loss = real_loss(model, x, y)
        return logits, loss * float("nan") if session.trainer.step >= 15 else loss

    monkeypatch.setattr(Trainer, "_loss", staticmethod(poisoned))
    with pytest.raises(TrainingError, match="the loss became nan at step 16") as err:
        session.trainer.train()
    assert err.value.field == "optim.lr" and "Lower the learning rate" in str(err.value)
    assert run.summary().status == "failed" and "nan" in run.summary().reason
    last = load_checkpoint(run.checkpoints_dir / "last.pt")
    assert last["trainer"]["step"] == 10
    assert all(torch.isfinite(t).all() for t in last["model"].values())
