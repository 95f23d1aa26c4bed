"""A full disk is an error of ours: one message naming the folder and the free space, a failed run with a
non-zero exit and no traceback, and the last good checkpoint kept, loadable and resumable."""
from __future__ import annotations

import errno
import json

import pytest
import torch

from autogpt_gui import cli, paths
from autogpt_gui.engine.data import sources
from autogpt_gui.engine.run import jsonl
from autogpt_gui.engine.run.checkpoints import load_checkpoint
from autogpt_gui.engine.run.runs import Run

TINY = ["model.preset='custom'", "model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32",
        "train.batch_size=4", "train.max_steps=20", "train.eval_interval=5", "train.eval_batches=2",
        "train.checkpoint_interval=5", "train.sample_tokens=0", "train.precision='fp32'", "train.device='cpu'",
        "optim.warmup_steps=2"]
SETS = [a for s in TINY for a in ("--set", s)]
TORCH_SHORT_WRITE = "[enforce fail at inline_container.cc:672] . unexpected pos 3371136 vs 3371028"


def _no_space(*_args, **_kw):
    raise OSError(errno.ENOSPC, "No space left on device")


def _said_once(err: str, folder) -> None:
    assert "Traceback" not in err and err.count("disk full") == 1, err
    assert f"in {folder} (" in err and " free)" in err and "resume" in err, err


def _step(path) -> int:
    return int(load_checkpoint(path)["trainer"]["step"])


def test_a_checkpoint_that_does_not_fit_fails_the_run_and_keeps_the_one_before(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_save, saves = torch.save, []

    def short_write(obj, fh):
        saves.append(1)
        if len(saves) == 3:  # step 15: torch's zip writer runs out of room half-way
            real_save(obj, fh)
            fh.truncate(100)
            raise RuntimeError(TORCH_SHORT_WRITE)
        real_save(obj, fh)

    monkeypatch.setattr(torch, "save", short_write)
    assert cli.main(["train", "--out", str(out), "--quiet", *SETS]) == 1
    _said_once(capsys.readouterr().err, out / "checkpoints")
    status = Run(out).read_status()
    assert status["status"] == "failed" and "disk full" in status["reason"]
    assert _step(out / "checkpoints" / "last.pt") == 10
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(torch, "save", real_save)  # space was freed
    assert cli.main(["resume", str(out), "--quiet"]) == 0
    assert _step(out / "checkpoints" / "last.pt") == 20


class _FullFile:
    """A metrics file on a disk that fills up: half of the write lands, then ENOSPC."""

    def __init__(self, fh):
        self.fh = fh

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()

    def seek(self, *args):
        return self.fh.seek(*args)

    def truncate(self, size):
        return self.fh.truncate(size)

    def write(self, data):
        self.fh.write(bytes(data[: len(data) // 2]))
        _no_space()


def test_a_metrics_file_that_does_not_fit_fails_the_run_without_a_torn_line(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_open = open

    def filling_open(path, mode="r", *args, **kw):
        fh = real_open(path, mode, *args, **kw)
        return _FullFile(fh) if str(path).endswith("metrics.jsonl") and full[0] else fh

    full = [False]
    real_append = jsonl.append

    def append(path, records, **kw):
        records = list(records)
        full[0] = full[0] or any(r.get("type") == "step" and r["step"] >= 8 for r in records)
        real_append(path, records, **kw)

    monkeypatch.setattr(jsonl, "open", filling_open, raising=False)
    monkeypatch.setattr(jsonl, "append", append)
    assert cli.main(["train", "--out", str(out), "--quiet", *SETS]) == 1
    _said_once(capsys.readouterr().err, out)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(ln) for ln in lines) and max(json.loads(ln)["step"] for ln in lines) < 8
    assert Run(out).read_status()["status"] == "failed"
    assert 5 <= _step(out / "checkpoints" / "last.pt") < 20
    monkeypatch.undo()
    assert cli.main(["resume", str(out), "--quiet"]) == 0
    assert _step(out / "checkpoints" / "last.pt") == 20


def test_a_token_cache_that_does_not_fit_fails_the_resume_and_the_checkpoint_still_resumes(tmp_path, monkeypatch,
                                                                                             capsys):
    import shutil

    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), "--quiet", *SETS, "--set", "train.max_steps=10"]) == 0
    shutil.rmtree(paths.cache_dir())  # the cache is rebuilt on resume, on a disk that is full now
    monkeypatch.setattr(sources, "_tokenize_to_files", _no_space)
    capsys.readouterr()
    assert cli.main(["resume", str(out), "--extend", "5", "--quiet"]) == 1
    _said_once(capsys.readouterr().err, paths.cache_dir())
    assert not [p for p in paths.cache_dir().iterdir() if p.name.startswith(".tmp-")]  # no half-written cache
    assert _step(out / "checkpoints" / "last.pt") == 10
    monkeypatch.undo()
    assert cli.main(["resume", str(out), "--extend", "5", "--quiet"]) == 0
    assert _step(out / "checkpoints" / "last.pt") == 15


@pytest.mark.parametrize("fmt", ["hf", "native"])
def test_an_export_that_does_not_fit_says_so(tmp_path, monkeypatch, capsys, fmt):
    out = tmp_path / "run"
    assert cli.main(["train", "--out", str(out), "--quiet", *SETS, "--set", "train.max_steps=5"]) == 0
    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_model", _no_space)
    monkeypatch.setattr(safetensors.torch, "save_file", _no_space)
    capsys.readouterr()
    assert cli.main(["export", str(out), str(tmp_path / "export"), "--format", fmt]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "disk full while writing the export" in err and " free)" in err, err
