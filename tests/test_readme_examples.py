"""The README cannot drift: every `autogpt-gui ...` line of its code blocks runs, verbatim, from a copy of
the repository with nothing beside it, and prints what the README says it does."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# appended to lines that train, so the whole README runs in under a minute; nothing else is changed
SHORTEN = {"train": " --set train.max_steps=30 --set train.eval_interval=10 --set optim.warmup_steps=5",
           "resume": " --set train.max_steps=40"}
# what each command line must print (regexes), keyed by the line with its comment removed
EXPECT = {
    r"train$": [r"run folder: ", r"Python documentation \(built in\)", r"finished at step 30"],
    r"train --config addition$": [r"task: addition", r"step 30: validation loss [\d.]+ \(best [\d.]+\), held-out "
                                                     r"accuracy [\d.]+%"],
    r"train --config shakespeare$": [r"Tiny Shakespeare \(built in\)", r"0\.80M parameters", r"finished at step 30"],
    r"runs$": [r"best val\s+accuracy\s+status", r"shakespeare-char\s+30/30\s+[\d.]+\s+-\s+finished",
               r"addition\s+30/30\s+[\d.]+\s+[\d.]+%\s+finished"],
    r"sample RUN_DIR --prompt \"def \"": [r"\Adef [\s\S]{100,}"],  # the prompt, then sampled text
    r"resume RUN_DIR --set train.max_steps=4000": [r"resumed at step 30, epoch 0, [\d,]+ tokens seen",
                                                   r"finished at step 40"],
    r"export RUN_DIR OUT_DIR$": [r"exported to .*OUT_DIR"],
    r"train --set data.tokenizer=bpe$": [r"Python documentation \(built in\)", r"finished at step 30"],
    r"export RUN_DIR OUT_DIR/gguf --format gguf --quant q8_0 --verify$": [r"\d+/32 greedy tokens equal to ours"],
}


def readme_command_lines(text: str) -> list[str]:
    """Lines of the README's code blocks that start with the app's command."""
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", text, re.S)
    return [ln.strip() for b in blocks for ln in b.splitlines() if re.match(r"(\.venv/bin/)?autogpt-gui\s", ln.strip())]


def copy_of_repository(dest: Path) -> Path:
    """The tracked files only: no venv, no build outputs, no ../shared beside it."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    # `.venv/bin/autogpt-gui` of the copy: this interpreter, running the copy's package
    shim = dest / ".venv" / "bin" / "autogpt-gui"
    shim.parent.mkdir(parents=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m autogpt_gui "$@"\n')
    shim.chmod(0o755)
    return dest


def run_readme(readme: str, tmp_path: Path) -> list[tuple[str, str]]:
    """Run every command line of readme in order; returns (line, output); raises AssertionError on a failure."""
    repo = copy_of_repository(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGPT_GUI")}
    env.update(AUTOGPT_GUI_HOME=str(tmp_path / "home"), PYTHONPATH=str(repo), PYTHONUNBUFFERED="1")
    where = subprocess.run([sys.executable, "-c", "import autogpt_gui; print(autogpt_gui.__file__)"], env=env,
                           cwd=repo, capture_output=True, text=True).stdout
    assert where.startswith(str(repo)), where  # the copy's code runs, not the checkout's
    run_dir, ran = "", []
    for line in readme_command_lines(readme):
        command = line.split("  #", 1)[0].strip()
        key = command.removeprefix(".venv/bin/").removeprefix("autogpt-gui ")
        expected = [v for k, v in EXPECT.items() if re.match(k, key)]
        assert expected, f"no expectation for README line {line!r}: add one to EXPECT"
        verb = key.split()[0]
        shell = command.replace("RUN_DIR", run_dir).replace("OUT_DIR", str(tmp_path / "OUT_DIR")) + SHORTEN.get(verb, "")
        done = subprocess.run(shell, shell=True, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        out = done.stdout + done.stderr
        assert done.returncode == 0, f"README line failed (exit {done.returncode}): {line}\n{out[-2000:]}"
        for pattern in expected[0]:
            assert re.search(pattern, out, re.M), f"README line {line!r} did not print /{pattern}/:\n{out[-2000:]}"
        if found := re.search(r"^run folder: (.+)$", out, re.M):
            run_dir = found.group(1)
        ran.append((line, out))
    return ran


@pytest.mark.slow
def test_every_readme_command_runs_from_a_copy_of_the_repository(tmp_path):
    ran = run_readme((ROOT / "README.md").read_text(), tmp_path)
    assert len(ran) == len(EXPECT)
    assert (tmp_path / "OUT_DIR" / "model.safetensors").is_file()
    assert len(list((tmp_path / "OUT_DIR" / "gguf").glob("*-q8_0.gguf"))) == 1
