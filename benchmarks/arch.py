"""The llama block kind against the gpt2 kind at micro's size on Tiny Shakespeare (char): same steps, same time.

The two train in turn, a round of steps each (A B A B ...), so a change in the machine's load falls on both.
Each one's clock counts its training steps only (not evaluations or checkpoints). Prints the validation loss
of each after the same steps, and the best each had reached by the wall time the faster one took.

    python benchmarks/arch.py [--steps 1000] [--round 50] [--flush-denormal] [--smoke]
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass, field

import torch

from autogpt_gui.config import RunConfig
from autogpt_gui.engine.session import build_session
from autogpt_gui.estimates import estimate
from autogpt_gui.resources import resource_path

CONTENDERS = ("micro", "llama-micro")  # the gpt2 kind and the llama kind, of the same parameter count


@dataclass
class Contender:
    """One model's run: its training clock and its validation losses as (step, clock, loss)."""

    preset: str
    clock: float = 0.0
    mark: float = 0.0
    evals: list[tuple[int, float, float]] = field(default_factory=list)
    params: int = 0


class Baton:
    """Lets one contender train at a time, handing over every round of steps."""

    def __init__(self, count: int):
        self.turn, self.count, self.done = 0, count, set()
        self.cond = threading.Condition()

    def wait(self, who: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == who)

    def pass_on(self, who: int, finished: bool = False) -> None:
        with self.cond:
            if finished:
                self.done.add(who)
            others = [i for i in range(1, self.count + 1) if (who + i) % self.count not in self.done]
            self.turn = (who + others[0]) % self.count if others else -1
            self.cond.notify_all()


def run(args) -> list[Contender]:
    steps, every = (20, 10) if args.smoke else (args.steps, args.eval_every)
    round_steps = 5 if args.smoke else args.round
    sets = [f"train.max_steps={steps}", f"optim.warmup_steps={2 if args.smoke else 100}",
            f"train.eval_interval={every}", "train.sample_tokens=0", "train.precision='fp32'",
            "train.checkpoint_interval=0", "train.log_interval=1", "train.device='cpu'",
            f"train.eval_batches={2 if args.smoke else 20}"]
    base = RunConfig.load(resource_path("configs", "shakespeare.toml"))
    baton = Baton(len(CONTENDERS))
    contenders, threads = [], []
    for who, preset in enumerate(CONTENDERS):
        cfg = base.with_overrides([f"model.preset='{preset}'", *sets])
        session = build_session(cfg)
        c = Contender(preset, params=estimate(session.config, session.config.model.vocab_size).params)
        trainer = session.trainer
        contenders.append(c)

        def on_step(m, c=c, who=who):
            now = time.perf_counter()
            c.clock += now - c.mark
            c.mark = now
            if m.step % round_steps == 0 and m.step < steps:
                baton.pass_on(who)
                baton.wait(who)
                c.mark = time.perf_counter()

        def restart(_m, c=c):  # an evaluation's or a checkpoint's time is not training time
            c.mark = time.perf_counter()

        def on_eval(m, c=c):
            c.evals.append((m.step, c.clock, m.val_loss))
            restart(m)

        trainer.on("step", on_step)
        trainer.on("eval", on_eval)
        trainer.on("checkpoint", restart)

        def train(trainer=trainer, c=c, who=who):
            baton.wait(who)
            c.mark = time.perf_counter()
            try:
                trainer.train()
            finally:
                baton.pass_on(who, finished=True)

        threads.append(threading.Thread(target=train, name=preset))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return contenders


def report(contenders: list[Contender]) -> None:
    for c in contenders:
        print(f"{c.preset:12s} {c.params:,} parameters, {c.clock:.1f}s training")
        for step, clock, loss in c.evals:
            print(f"  step {step:5d}  {clock:6.1f}s  val loss {loss:.4f}")
    steps = min(c.evals[-1][0] for c in contenders)
    same_steps = ", ".join(f"{c.preset} {dict((s, v) for s, _t, v in c.evals)[steps]:.4f}" for c in contenders)
    print(f"validation loss after {steps} steps: {same_steps}")
    wall = min(c.clock for c in contenders)
    at_wall = ", ".join(f"{c.preset} {min(v for _s, t, v in c.evals if t <= wall + 1e-9):.4f}"
                        for c in contenders if any(t <= wall + 1e-9 for _s, t, _v in c.evals))
    print(f"best validation loss within {wall:.1f}s of training: {at_wall}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--round", type=int, default=50, help="steps each trains before handing over")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--smoke", action="store_true", help="20 steps each, in seconds (the test suite runs it)")
    ap.add_argument("--flush-denormal", action="store_true",
                    help="treat denormal floats as zero (to tell a slow phase of denormal arithmetic from load)")
    args = ap.parse_args()
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    report(run(args))
    print(f"total wall time {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
