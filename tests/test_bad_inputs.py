"""Every bad input gets a message naming the field and the fix, and a non-zero exit; never a traceback."""
import json

import pytest

from autogpt_gui.cli import main

TINY = ["--set", "model.preset='nano'", "--set", "train.max_steps=5", "--set", "optim.warmup_steps=1",
        "--set", "train.sample_tokens=0", "--set", "train.precision='fp32'", "--quiet"]


def _file(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(p)


def _source(kind, path):
    return ["--set", f"data.source='{kind}'", "--set", f"data.path='{path}'"]


CASES = {
    "heads not dividing width": (lambda t: ["--set", "model.preset='custom'", "--set", "model.n_head=3",
                                            "--set", "model.n_embd=128"], "model.n_head", "try"),
    "context longer than the data": (lambda t: _source("file", _file(t, "short.txt", "hello world\n" * 8))
                                     + ["--set", "model.block_size=64"], "model.block_size", "at most"),
    "empty file": (lambda t: _source("file", _file(t, "empty.txt", "")), "data.path", "empty"),
    "whitespace-only file": (lambda t: _source("file", _file(t, "blank.txt", "  \n\n ")), "data.path", "empty"),
    "binary file": (lambda t: _source("file", _file(t, "x.bin", bytes(range(256)) * 10)), "data.path", "binary"),
    "missing file": (lambda t: _source("file", str(t / "nope.txt")), "data.path", "does not exist"),
    "non-UTF-8 file": (lambda t: _source("file", _file(t, "latin1.txt", "caf\xe9 ".encode("latin-1") * 100)),
                       "data.path", "UTF-8"),
    "NaN learning rate": (lambda t: ["--set", "optim.lr=nan"], "optim.lr", "positive"),
    "negative learning rate": (lambda t: ["--set", "optim.lr=-0.001"], "optim.lr", "positive"),
    "zero batch": (lambda t: ["--set", "train.batch_size=0"], "train.batch_size", "at least 1"),
    "warmup beyond max steps": (lambda t: ["--set", "optim.warmup_steps=500", "--set", "train.max_steps=100"],
                                "optim.warmup_steps", "below max steps"),
    "BPE vocabulary larger than the data allows": (
        lambda t: _source("file", _file(t, "small.txt", "the cat sat on the mat. " * 400))
        + ["--set", "data.tokenizer='bpe'", "--set", "data.bpe_vocab_size=5000", "--set", "model.block_size=16"],
        "data.bpe_vocab_size", "or less"),
    "unknown preset": (lambda t: ["--set", "model.preset='huge'"], "model.preset", "choose one of"),
    "unknown --set key": (lambda t: ["--set", "train.speed=11"], "train.speed", "unknown setting"),
    "--set without a section": (lambda t: ["--set", "lr=0.1"], "lr", "section.key=value"),
    "not a number": (lambda t: ["--set", "train.max_steps='many'"], "train.max_steps", "not a valid int"),
    "unknown source": (lambda t: ["--set", "data.source='internet'"], "data.source", "choose one of"),
    "dropout of 1.5": (lambda t: ["--set", "model.dropout=1.5"], "model.dropout", "below 1"),
    "folder without text": (lambda t: (t / "imgs").mkdir() or _file(t, "imgs/a.png", b"\x89PNG") and
                            _source("folder", str(t / "imgs")), "data.path", "no text files"),
    "JSONL without the text field": (lambda t: _source("jsonl", _file(t, "d.jsonl", json.dumps({"body": "x"}) + "\n")),
                                     "data.path", "'text'"),
    "fp16 on a CPU": (lambda t: ["--set", "train.precision='fp16'", "--set", "train.device='cpu'"],
                      "train.precision", "bf16 or fp32"),
    "CUDA on a machine without one": (lambda t: ["--set", "train.device='cuda'"], "train.device", "choose auto"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_names_field_and_fix(name, tmp_path, capsys):
    args, field, hint = CASES[name]
    code = main(["train", *TINY, *args(tmp_path)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code != 0, text
    assert field in out.err and hint in out.err, out.err
    assert "Traceback" not in text


def test_missing_and_broken_config_files(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "none.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nn_layer = 2")
    assert main(["train", "--config", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_every_problem_is_listed_at_once(capsys):
    assert main(["train", "--set", "optim.lr=nan", "--set", "train.batch_size=0", "--set", "model.dropout=2"]) == 2
    err = capsys.readouterr().err
    assert all(f in err for f in ("optim.lr", "train.batch_size", "model.dropout"))


def test_sampling_a_hostile_checkpoint_is_refused(tmp_path, capsys):
    import os

    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"format": "autogpt-gui-checkpoint", "x": Evil()}, tmp_path / "evil.pt")
    assert main(["sample", str(tmp_path / "evil.pt")]) == 1
    assert "refused" in capsys.readouterr().err and not (tmp_path / "ran").exists()
