"""Data-parallel scaling: one process against N processes under torchrun, the same global batch.

Each contender is the real command line (`autogpt-gui train`, and the same under torch.distributed.run),
on the micro preset and Tiny Shakespeare; tokens/s is the median over the steps after the first 20,
from metrics.jsonl (which counts every rank's tokens; the first half when a run is shorter). Contenders alternate (1, N, N, 1, ...) because
these machines are shared and noisy. Scaling efficiency = (tokens/s with N) / (N x tokens/s with 1).
On a CPU, processes share the cores (torchrun gives each one thread); on a machine with several GPUs
each process gets its own GPU and NCCL carries the gradients.

    python benchmarks/ddp.py [--nproc 2] [--rounds 2] [--steps 120] [--smoke]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SETTINGS = ["model.preset='micro'", "data.source='shakespeare'", "train.eval_interval=100000", "train.eval_batches=1",
            "train.checkpoint_interval=0", "train.sample_tokens=0", "optim.warmup_steps=10"]


def run(nproc: int, batch: int, steps: int, folder: Path) -> float:
    sets = [a for s in (*SETTINGS, f"train.batch_size={batch}", f"train.max_steps={steps}") for a in ("--set", s)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                "-m", "autogpt_gui"] if nproc > 1 else [sys.executable, "-m", "autogpt_gui"]
    done = subprocess.run([*launcher, "train", "--out", str(folder), "--quiet", *sets], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{nproc} process(es) failed:\n{done.stderr[-3000:]}")
    rows = [json.loads(ln) for ln in (folder / "metrics.jsonl").read_text().splitlines() if '"step"' in ln]
    warmup = min(20, steps // 2)
    return statistics.median(r["tokens_per_sec"] for r in rows if r.get("type") == "step" and r["step"] > warmup)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--batch", type=int, default=16, help="the global batch (each of N ranks takes batch / N)")
    ap.add_argument("--smoke", action="store_true",
                    help="one round of 12 steps, batch 4, in seconds (the test suite runs it): figures are printed")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.steps, args.batch = 1, 12, 4
    results: dict[int, list[float]] = {1: [], args.nproc: []}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("AUTOGPT_GUI_HOME", str(Path(tmp) / "home"))
        for r in range(args.rounds):
            for n in ((1, args.nproc) if r % 2 == 0 else (args.nproc, 1)):
                tps = run(n, args.batch // n, args.steps, Path(tmp) / f"r{r}-n{n}")
                results[n].append(tps)
                print(f"round {r + 1}: {n} process(es): {tps:9.0f} tokens/s", flush=True)
    one, many = statistics.median(results[1]), statistics.median(results[args.nproc])
    print(f"\nmicro preset, global batch {args.batch}, {args.steps} steps, medians of {args.rounds} rounds:")
    print(f"  1 process {one:.0f} tokens/s, {args.nproc} processes {many:.0f} tokens/s: speed-up {many / one:.2f}x, "
          f"scaling efficiency {many / (args.nproc * one):.0%}")


if __name__ == "__main__":
    main()
