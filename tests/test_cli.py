"""A new user's path from the README: train from the command line, list runs, sample, export."""
import subprocess
import sys
from pathlib import Path

from autogpt_gui import paths
from autogpt_gui.cli import main

TINY = ["--set", "model.preset='nano'", "--set", "train.max_steps=30", "--set", "optim.warmup_steps=3",
        "--set", "train.eval_interval=15", "--set", "train.precision='fp32'", "--quiet"]


def test_train_list_sample_and_export(tmp_path, capsys):
    assert main(["train", *TINY]) == 0
    text = capsys.readouterr().out
    out = Path(text.split("run folder: ")[1].splitlines()[0])
    assert out.parent == paths.runs_dir()
    assert "finished at step 30" in text and "Python documentation" in text
    assert (out / "checkpoints" / "best.pt").exists() and (out / "metrics.jsonl").exists()
    assert (out / "samples.jsonl").read_text().count("\n") == 2

    assert main(["runs"]) == 0
    assert "finished" in capsys.readouterr().out

    assert main(["sample", str(out), "--prompt", "def ", "--max-new-tokens", "40", "--seed", "1"]) == 0
    sample = capsys.readouterr().out
    assert sample.startswith("def ") and len(sample) > 30

    assert main(["export", str(out), str(tmp_path / "export"), "--format", "native"]) == 0
    from autogpt_gui.engine.export import load_exported

    model, tok = load_exported(tmp_path / "export")
    assert tok.vocab_size == model.config.vocab_size


def test_resume_continues_a_run_to_a_new_length(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    assert main(["resume", str(out), "--set", "train.max_steps=40", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "resumed at step 30" in text and "finished at step 40" in text


def test_bundled_config_by_name_and_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "autogpt_gui", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("autogpt-gui ")
    from autogpt_gui.cli import load_config

    assert load_config("addition", []).data.source == "task:addition"
