"""Checkpoints survive failures, refuse hostile files, and keep best and last."""
import errno
import os

import pytest
import torch

from autogpt_gui import paths
from autogpt_gui.engine.run import checkpoints as ck
from autogpt_gui.engine.run.runs import Run
from autogpt_gui.engine.session import build_session
from autogpt_gui.errors import CheckpointError


def test_failure_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    ck.save_checkpoint({"weights": torch.ones(3)}, path)
    real_save = torch.save

    def broken_save(obj, fh):
        real_save(obj, fh)
        fh.truncate(100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError, match="disk full"):
        ck.save_checkpoint({"weights": torch.zeros(3)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(ck.load_checkpoint(path)["weights"], torch.ones(3))
    assert os.listdir(tmp_path) == ["last.pt"]  # no temp file, nothing half-written


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['EVIL_MARK']}",))


def test_checkpoint_with_pickled_code_is_refused_and_code_does_not_run(tmp_path, monkeypatch):
    mark = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_MARK", str(mark))
    path = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "model": _Evil()}, path)
    with pytest.raises(CheckpointError, match="could run code on this computer"):
        ck.load_checkpoint(path)
    assert not mark.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_damaged_or_foreign_files_get_a_clear_message(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        ck.load_checkpoint(path)


def test_truncated_checkpoint_and_foreign_dict(tmp_path):
    good = tmp_path / "good.pt"
    ck.save_checkpoint({"w": torch.randn(1000)}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        ck.load_checkpoint(cut)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not an autogpt-gui checkpoint"):
        ck.load_checkpoint(other)


def test_retention_keeps_last_k_and_never_drops_best_or_last(tiny_config):
    cfg = tiny_config("train.max_steps=60", "train.checkpoint_interval=5", "train.keep_last=2",
                      "train.eval_interval=10")
    run = Run.create(cfg, paths.runs_dir())
    build_session(cfg, run).trainer.train()
    names = sorted(p.name for p in run.checkpoints_dir.glob("*.pt"))
    steps = [n for n in names if n.startswith("step-")]
    assert steps == ["step-00000055.pt", "step-00000060.pt"]
    assert "best.pt" in names and "last.pt" in names
    best = ck.load_checkpoint(run.checkpoints_dir / "best.pt")
    assert best["trainer"]["last_val_loss"] == pytest.approx(best["trainer"]["best_val_loss"])
    table = run.checkpoint_folder().list()
    assert any(c.is_best for c in table) and table[0].step == 60
