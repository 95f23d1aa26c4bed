"""Is precision='auto' stable? The probe's decision on the micro preset in N fresh processes,
while another process keeps one core busy (as a browser or a second run would).

Prints each run's measured bf16 speedup, the decision resolve_precision made, and the decision the
timing rule alone makes (speedup >= BF16_MARGIN), which matters where the CPU has no bf16 flags and
auto keeps fp32 without timing.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter

PROBE = """
import sys
import torch
from autogpt_gui.config import ModelConfig
from autogpt_gui.engine.train import precision
from autogpt_gui.engine.model.gpt import AutoGPTModel
torch.manual_seed(0)
model = AutoGPTModel(ModelConfig.from_preset("micro", vocab_size=100))
dev = torch.device("cpu")
shape = tuple(int(n) for n in sys.argv[1:3])
choice, reason = precision.resolve_precision("auto", model, dev, shape)
speedup = precision.bf16_speedup(model, dev, shape)
print(f"{choice} {speedup:.3f} {'bf16' if speedup >= precision.BF16_MARGIN else 'fp32'} | {reason}")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--smoke", action="store_true",
                    help="one run of a small batch and no extra load, in seconds (the test suite runs it)")
    args = ap.parse_args()
    runs, shape = (1, ("2", "16")) if args.smoke else (args.runs, ("12", "64"))
    # the busy process is the point of the benchmark; a smoke run leaves the shared cores alone
    load = None if args.smoke else subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        decided, timed, speedups = Counter(), Counter(), []
        for i in range(runs):
            out = subprocess.run([sys.executable, "-c", PROBE, *shape], capture_output=True, text=True,
                                 check=True).stdout
            choice, speedup, by_timing = out.split(" | ")[0].split()
            decided[choice] += 1
            timed[by_timing] += 1
            speedups.append(float(speedup))
            print(f"run {i + 1:2d}: auto chose {choice}; bf16 speedup {float(speedup):.2f}x -> timing rule says "
                  f"{by_timing}   ({out.split(' | ')[1].strip()})")
    finally:
        if load is not None:
            load.kill()
    loaded = "no extra load" if load is None else "with one core loaded"
    print(f"\n{loaded}: auto chose {dict(decided)}; the timing rule alone {dict(timed)}; "
          f"speedups {min(speedups):.2f}-{max(speedups):.2f}x (median {sorted(speedups)[len(speedups) // 2]:.2f})")


if __name__ == "__main__":
    main()
