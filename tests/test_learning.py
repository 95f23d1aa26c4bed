"""The engine learns: Tiny Shakespeare's loss falls below nanoGPT's mark; addition is solved."""
import pytest

from autogpt_gui.config import RunConfig
from autogpt_gui.engine.data import make_source
from autogpt_gui.engine.session import build_session
from autogpt_gui.engine.tasks import task_accuracy
from autogpt_gui.resources import resource_path


def test_shakespeare_char_reaches_nanogpt_loss_in_300_steps(shakespeare):
    cfg = RunConfig.load(resource_path("configs", "shakespeare.toml")).with_overrides([
        f"data.path='{shakespeare}'", "train.max_steps=300", "optim.warmup_steps=30",
        "train.eval_interval=300", "train.sample_tokens=0", "train.device='cpu'"])
    session = build_session(cfg)
    result = session.trainer.train()
    assert session.model.num_params() > 0.7e6
    assert result.best_val_loss < 2.45, result


@pytest.mark.slow
def test_addition_task_reaches_95_percent_on_held_out_sums():
    cfg = RunConfig.load(resource_path("configs", "addition.toml")).with_overrides(
        ["train.eval_interval=1000", "train.sample_tokens=0", "train.device='cpu'"])
    session = build_session(cfg)
    session.trainer.train()
    held_out = make_source(cfg.data).task.val
    assert len(held_out) == 1000
    assert task_accuracy(session.model, session.tokenizer, held_out) >= 0.95
