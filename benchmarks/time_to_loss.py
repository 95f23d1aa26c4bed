"""Time to a good model: wall seconds, start-up included, until the validation loss first reaches a target
on Tiny Shakespeare (char), for nanoGPT's recipe, our gpt2 kind with AdamW, and `--config shakespeare`.

Each contender trains in a fresh process (the clock starts when it is launched: imports, data and model
building count), rounds interleaved (A B C, A B C) so the machine's load falls on all alike. All are
measured by one yardstick: our EvalLoader's fixed validation windows, every --eval-every steps. The target
is nanoGPT's own loss at the end of its run (median of the rounds); a contender's time to it is its first
evaluation at or below it. Also printed: the loss each had reached at the wall time nanoGPT took.

    python benchmarks/time_to_loss.py [--shape small|mini] [--rounds 2] [--contenders ...] [--smoke]

small: nanoGPT's CPU setting (4 layers, 128 wide, context 64, batch 12, 2,000 steps);
mini: the 10.65M shape (6 layers, 384 wide, context 256, batch 16, 250 steps).
`--config shakespeare` runs as shipped whatever the shape (the target is a loss: a user gets there with
the example); at mini, "ours recipe at this shape" also runs the example's recipe at the 10.65M shape.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

# shape -> (n_layer, n_head, n_embd, block_size, batch_size, nanoGPT's steps, warmup)
SHAPES = {"small": (4, 4, 128, 64, 12, 2000, 100), "mini": (6, 6, 384, 256, 16, 250, 25),
          "smoke": (1, 2, 32, 32, 4, 30, 3)}
CONTENDERS = ("nanoGPT", "ours gpt2+AdamW", "ours --config shakespeare", "ours recipe at this shape")


def _ours_settings(shape: str, which: str, eval_every: int, eval_batches: int) -> list[str]:
    n_layer, n_head, n_embd, block, batch, steps, warmup = SHAPES[shape]
    common = ["train.sample_tokens=0", "train.checkpoint_interval=0", "train.device='cpu'",
              f"train.eval_interval={eval_every}", f"train.eval_batches={eval_batches}", "train.log_interval=50"]
    if which == "ours gpt2+AdamW":  # the recipe that matched nanoGPT step for step: its settings, our code
        return ["model.preset='custom'", "model.arch='gpt2'", f"model.n_layer={n_layer}", f"model.n_head={n_head}",
                f"model.n_embd={n_embd}", f"model.block_size={block}", "optim.name='adamw'", "optim.lr=1e-3",
                "optim.min_lr=1e-4", "optim.schedule='cosine'", f"optim.warmup_steps={warmup}",
                f"train.max_steps={steps}", "train.precision='fp32'", f"train.batch_size={batch}", *common]
    if which == "ours --config shakespeare" or shape != "mini":  # the example as shipped: its shape, batch, recipe
        return common  # and length, whatever the target's shape (smoke: --set shrinks it)
    # the 10.65M shape: the example's recipe on its preset's mini size, at the example's share of nanoGPT's steps
    from autogpt_gui.config import RunConfig
    from autogpt_gui.resources import resource_path

    example = RunConfig.load(resource_path("configs", "shakespeare.toml"))
    scale = steps / SHAPES["small"][5]
    return [f"model.preset='{example.model.preset.replace('micro', 'mini')}'", f"train.batch_size={batch}", *common,
            f"train.max_steps={round(example.train.max_steps * scale)}",
            f"optim.warmup_steps={max(1, round(example.optim.warmup_steps * scale))}"]


def worker(args) -> None:
    """One contender's run in this process; prints one JSON line per evaluation: seconds since launch."""
    launched = args.launched
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch

    from autogpt_gui.config import RunConfig
    from autogpt_gui.engine.data.loaders import EvalLoader

    def say(step: int, loss: float) -> None:
        print(json.dumps({"step": step, "t": time.time() - launched, "loss": loss}), flush=True)

    if args.worker == "nanoGPT":
        import numpy as np
        from common import token_data
        from nanogpt_ref import GPT, get_batch, get_lr

        n_layer, n_head, n_embd, block, batch, steps, warmup = SHAPES[args.shape]
        data = token_data(Path(args.cache))
        torch.manual_seed(1337)
        model = GPT(data.tokenizer.vocab_size, block, n_layer, n_head, n_embd, bias=False)
        optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
        train = np.asarray(data.train)
        val = EvalLoader(data.val, batch, block, args.eval_batches)
        X, Y = get_batch(train, batch, block)
        for it in range(steps + 1):
            if it % args.eval_every == 0 or it == steps:  # nanoGPT evaluates before the step of its number
                model.eval()
                with torch.no_grad():
                    losses = [model(x, y.contiguous())[1].item() for x, y in val]
                model.train()
                say(it, sum(losses) / len(losses))
            if it == steps:
                break
            for g in optimizer.param_groups:
                g["lr"] = get_lr(it, 1e-3, 1e-4, warmup, steps)
            _, loss = model(X, Y)
            X, Y = get_batch(train, batch, block)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return
    from autogpt_gui.engine.session import build_session
    from autogpt_gui.resources import resource_path

    sets = _ours_settings(args.shape, args.worker, args.eval_every, args.eval_batches)
    example = RunConfig.load(resource_path("configs", "shakespeare.toml"))
    if args.worker == "ours gpt2+AdamW":  # from the dataclass defaults (the gpt2 kind), on the example's data
        example = RunConfig(name=example.name, data=example.data)
    cfg = example.with_overrides([*sets, *args.set])
    session = build_session(cfg)
    session.trainer.on("eval", lambda e: say(e.step, e.val_loss))
    say(0, session.trainer.evaluate())
    session.trainer.train()
    print(json.dumps({"precision": session.trainer.precision, "steps": cfg.train.max_steps}), flush=True)


def launch(name: str, args, cache: Path) -> dict:
    """Run one contender in a fresh process; its evaluations and what it chose."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--shape", args.shape, "--cache",
           str(cache), "--eval-every", str(args.eval_every), "--eval-batches", str(args.eval_batches),
           *[x for s in args.set for x in ("--set", s)], "--launched", repr(time.time())]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {"evals": [(r["step"], r["t"], r["loss"]) for r in lines if "loss" in r],
            "info": next((r for r in lines if "precision" in r), {})}


def first_reach(evals: list[tuple[int, float, float]], target: float) -> float:
    """Seconds until the first evaluation at or below target (inf if never)."""
    return next((t for _s, t, loss in evals if loss <= target + 1e-9), math.inf)


def loss_at(evals: list[tuple[int, float, float]], wall: float) -> float:
    """The best validation loss measured by `wall` seconds (inf if none yet)."""
    return min((loss for _s, t, loss in evals if t <= wall), default=math.inf)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=tuple(SHAPES), default="small", help="small or mini (smoke: --smoke's)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (default: a twentieth)")
    ap.add_argument("--eval-batches", type=int, default=20)
    ap.add_argument("--set", action="append", default=[], help="an override for our --config shakespeare runs")
    ap.add_argument("--contenders", default="", help="a comma-separated subset of: " + ", ".join(CONTENDERS) +
                    " (default: all; at the small shape the last is the example itself)")
    ap.add_argument("--smoke", action="store_true", help="a 30-step run of each, in seconds (the test suite runs it)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--launched", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return 0
    import tempfile

    if args.smoke:
        args.shape, args.rounds, args.eval_batches = "smoke", 1, 2
        args.set = [*args.set, *[f"model.{k}={v}" for k, v in zip(("n_layer", "n_head", "n_embd", "block_size"),
                                                                        SHAPES["smoke"][:4])],
                    "model.preset='custom'", "train.max_steps=30", "optim.warmup_steps=3", "train.batch_size=4"]
    args.eval_every = args.eval_every or max(5, SHAPES[args.shape][5] // 20)
    cache = Path(tempfile.mkdtemp(prefix="time-to-loss-"))
    chosen = [c.strip() for c in args.contenders.split(",") if c.strip()] or list(CONTENDERS)
    if args.shape != "mini" and "ours recipe at this shape" in chosen and "ours --config shakespeare" in chosen:
        chosen.remove("ours recipe at this shape")  # the example's own shape: the same run twice
    if "nanoGPT" not in chosen or not set(chosen) <= set(CONTENDERS):
        raise SystemExit(f"--contenders: nanoGPT (it sets the target) and any of {', '.join(CONTENDERS[1:])}")
    runs: dict[str, list[dict]] = {name: [] for name in chosen}
    for r in range(args.rounds):
        for name in chosen:
            runs[name].append(launch(name, args, cache))
            last = runs[name][-1]["evals"][-1]
            print(f"round {r + 1} {name:28s} step {last[0]:5d} at {last[1]:6.1f}s: val loss {last[2]:.4f} "
                  f"{runs[name][-1]['info']}", flush=True)
    report(runs)
    return 0


def report(runs: dict[str, list[dict]]) -> None:
    target = statistics.median(run["evals"][-1][2] for run in runs["nanoGPT"])
    theirs = statistics.median(first_reach(run["evals"], target) for run in runs["nanoGPT"])
    print(f"target: nanoGPT's validation loss at its last step {target:.4f} (median of {len(runs['nanoGPT'])} rounds)")
    for name, done in runs.items():
        reach = [first_reach(run["evals"], target) for run in done]
        at = [loss_at(run["evals"], theirs) for run in done]
        med = statistics.median(reach)
        print(f"{name:28s} time to {target:.4f}: {', '.join(f'{t:.1f}s' for t in reach)} (median {med:.1f}s, "
              f"{med / theirs:.2f} of nanoGPT's); best loss by {theirs:.1f}s: {statistics.median(at):.4f}")


if __name__ == "__main__":
    sys.exit(main())
