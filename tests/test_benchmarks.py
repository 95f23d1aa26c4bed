"""Every benchmark still runs: each script at its smallest size (--smoke), as a user would start it."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"

# each runnable script, and the figures it prints (what a reader of its output looks for)
FIGURES = {
    "throughput.py": [r"Trainer / bare loop \(fp32\): +\d+\.\d+", r"speed ours/nanoGPT \d+\.\d+"],
    "gui.py": [r"window [\d,]+ tokens/s, ratio \d+\.\d+", r"p99 \d+\.\d+ ms", r"full redraw \d+\.\d+ ms"],
    "shakespeare.py": [r"validation loss after 20 steps: \d+\.\d+"],
    "startup.py": [r"process start to usable window: best \d+\.\d+s"],
    "precision_probe.py": [r"bf16 speedup \d+\.\d+x", r"auto chose \{'(fp32|bf16)': 1\}"],
    "ddp.py": [r"speed-up \d+\.\d+x, scaling efficiency \d+%"],
    "finetune.py": [r"ratio ours/theirs \d+\.\d+", r"peak memory  ours \d+ MB"],
    "time_to_loss.py": [r"target: nanoGPT's validation loss at its last step \d+\.\d+",
                        r"ours --config shakespeare +time to \d+\.\d+: .*\(median (\d+\.\d+|inf)s"],
    "arch.py": [r"validation loss after 20 steps: micro \d+\.\d+, llama-micro \d+\.\d+",
                r"best validation loss within \d+\.\d+s of training: micro \d+\.\d+"],
}
# two processes per contender (torchrun, Hugging Face's Trainer): a minute or more on a loaded machine
# time_to_loss.py: three contenders, each a fresh process (start-up is part of what it measures);
# gui.py, arch.py, shakespeare.py: 6-10 s each on a quiet machine, 40-50 s on a loaded one
SLOW = {"ddp.py", "finetune.py", "time_to_loss.py", "gui.py", "arch.py", "shakespeare.py"}


def test_every_runnable_benchmark_is_smoke_tested():
    runnable = {p.name for p in BENCHMARKS.glob("*.py") if 'if __name__ == "__main__":' in p.read_text()}
    assert runnable == set(FIGURES), "add the script to FIGURES (and give it --smoke)"


@pytest.mark.parametrize("script", [pytest.param(s, marks=[pytest.mark.slow] if s in SLOW else []) for s in FIGURES])
def test_benchmark_runs_at_its_smallest_size(script, tmp_path):
    path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": os.pathsep.join(path),
           "AUTOGPT_GUI_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--smoke"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    missing = [figure for figure in FIGURES[script] if not re.search(figure, done.stdout)]
    assert not missing, f"{missing} not in:\n{done.stdout[-3000:]}"


@pytest.mark.slow
def test_the_gpu_check_runs_its_cpu_version(tmp_path):
    """benchmarks/gpu_check.sh --cpu: every step of the GPU check, small, on this CPU (a few minutes: six
    Python start-ups and a torchrun job), so the script cannot rot before a GPU is lent."""
    path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "AUTOGPT_GUI_HOME": str(tmp_path / "home"),
           "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(BENCHMARKS / "gpu_check.sh"), "--cpu"], env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0 and "gpu check done: 0 failed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
    for name in ("engine imports without Qt", "train fp32 adamw", "train bf16 adamw", "train muon",
                 "1-rank torchrun (gloo)", "GPT-2 tokens/s and MFU"):
        assert re.search(rf"^ok {re.escape(name)}: ", done.stdout, re.M), name
    assert re.search(r"ratio ours/nanoGPT \d+\.\d+", done.stdout)
