"""Trainer vs a bare hand-written PyTorch loop on the same model and batches, and auto precision.

Prints tokens/s, the ratios (Trainer / bare at fp32, auto / bare fp32), what 'auto' chose, and
model FLOPs utilisation against matmul peaks measured here. Variants are interleaved in rounds
and medians taken, because these machines are shared and noisy.

    python benchmarks/throughput.py [--rounds 3] [--smoke]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CONFIGS, SMOKE_CONFIGS, SMOKE_HELP, gpt_config, matmul_peak, per_step_seconds, token_data  # noqa: E402

from autogpt_gui.config import TrainConfig  # noqa: E402
from autogpt_gui.engine.data.loaders import EvalLoader, RandomWindowLoader  # noqa: E402
from autogpt_gui.engine.model.gpt import AutoGPTModel  # noqa: E402
from autogpt_gui.engine.train.schedules import make_schedule  # noqa: E402
from autogpt_gui.engine.train.trainer import Trainer  # noqa: E402


def optimizer_for(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)


def bare_loop(model, loader, steps: int) -> float:
    """The loop anyone would write: forward, backward, clip, step; seconds per step."""
    opt = optimizer_for(model)
    schedule = make_schedule("cosine", 1e-3, 1e-4, 10, 1000)
    stamps, it = [], iter(loader)
    for step in range(steps + 3):
        x, y = next(it)
        for g in opt.param_groups:
            g["lr"] = schedule(step)
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        stamps.append(time.perf_counter())
    return per_step_seconds(stamps)


def trainer_loop(model, loader, val, steps: int, precision: str) -> tuple[float, str]:
    """Our Trainer on the same model and batches; seconds per step and the precision it used."""
    cfg = TrainConfig(max_steps=steps + 3, eval_interval=10**9, checkpoint_interval=0, precision=precision,
                      device="cpu", sample_tokens=0)
    trainer = Trainer(model, optimizer_for(model), loader, val, config=cfg,
                      schedule=make_schedule("cosine", 1e-3, 1e-4, 10, 1000), grad_clip=1.0)
    stamps: list[float] = []
    trainer.on("step", lambda m: stamps.append(time.perf_counter()))
    trainer.train()
    return per_step_seconds(stamps), f"{trainer.precision} ({trainer.precision_reason})"


def against_nanogpt(data, rounds: int, configs: list = CONFIGS) -> bool:
    """ms per step at fp32: our Trainer with our defaults vs nanoGPT's model and loop, interleaved A B A B."""
    import numpy as np
    from nanogpt_ref import GPT, train_steps

    from autogpt_gui.config import ModelConfig

    tokens = np.asarray(data.train, dtype=np.uint16)
    ok = True
    print(f"\nfp32 against nanoGPT (its train.py: bias=False; ours: bias={ModelConfig().bias}, our default)")
    for label, shape, batch, steps in configs:
        vocab = data.tokenizer.vocab_size
        ours_cfg = ModelConfig(vocab_size=vocab, dropout=0.0, **shape)
        val = EvalLoader(data.val, batch, shape["block_size"], 2)
        ours, theirs = [], []
        for r in range(rounds):
            torch.manual_seed(r)
            t_theirs = per_step_seconds(train_steps(GPT(vocab, bias=False, **shape), tokens, batch,
                                                    shape["block_size"], steps + 3))
            torch.manual_seed(r)
            loader = RandomWindowLoader(data.train, batch, shape["block_size"], seed=r)
            t_ours = trainer_loop(AutoGPTModel(ours_cfg), loader, val, steps, "fp32")[0]
            ours.append(t_ours)
            theirs.append(t_theirs)
            print(f"  {label} round {r + 1}: nanoGPT {t_theirs * 1e3:7.1f} ms, ours {t_ours * 1e3:7.1f} ms "
                  f"-> speed ours/nanoGPT {t_theirs / t_ours:.3f}")
        ratio = statistics.median(theirs) / statistics.median(ours)
        print(f"  {label}: median nanoGPT {statistics.median(theirs) * 1e3:.1f} ms, ours "
              f"{statistics.median(ours) * 1e3:.1f} ms per step; speed ours/nanoGPT {ratio:.3f} (target >= 1.0)")
        ok &= ratio >= 1.0
    return ok


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nanogpt-only", action="store_true", help="only the fp32 comparison with nanoGPT")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args()
    configs = SMOKE_CONFIGS if args.smoke else CONFIGS
    if args.smoke:
        args.rounds = 1
    torch.manual_seed(0)
    if args.nanogpt_only:
        with tempfile.TemporaryDirectory() as tmp:
            data = token_data(Path(tmp))
        ok = against_nanogpt(data, args.rounds, configs)
        return verdict(ok, args.smoke)
    peak = dict(n=256, seconds=0.1) if args.smoke else {}
    peak32, peak16 = matmul_peak(torch.float32, **peak), matmul_peak(torch.bfloat16, **peak)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; measured matmul peak: "
          f"fp32 {peak32 / 1e9:.0f} GFLOP/s, bf16 {peak16 / 1e9:.0f} GFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        data = token_data(Path(tmp))
    ok = True
    for label, shape, batch, steps in configs:
        cfg = gpt_config(shape, data.tokenizer.vocab_size)
        base = AutoGPTModel(cfg)
        tokens_per_step = batch * cfg.block_size
        times: dict[str, list[float]] = {"bare fp32": [], "Trainer fp32": [], "Trainer auto": []}
        chose = ""
        for _ in range(args.rounds):
            def loader(batch=batch, block=cfg.block_size):
                return RandomWindowLoader(data.train, batch, block, seed=1)
            val = EvalLoader(data.val, batch, cfg.block_size, 2)
            times["bare fp32"].append(bare_loop(copy.deepcopy(base), loader(), steps))
            times["Trainer fp32"].append(trainer_loop(copy.deepcopy(base), loader(), val, steps, "fp32")[0])
            t, chose = trainer_loop(copy.deepcopy(base), loader(), val, steps, "auto")
            times["Trainer auto"].append(t)
        rate = {k: tokens_per_step / statistics.median(v) for k, v in times.items()}
        flops = base.flops_per_token()
        print(f"\n{label}: {base.num_params() / 1e6:.2f}M parameters, {flops / 1e6:.1f} MFLOP/token")
        for k, r in rate.items():
            peak = peak16 if (k == "Trainer auto" and chose.startswith("bf16")) else peak32
            print(f"  {k:13} {r:10,.0f} tokens/s   MFU {flops * r / peak * 100:5.1f}% of "
                  f"{'bf16' if peak is peak16 else 'fp32'} peak")
        parity = rate["Trainer fp32"] / rate["bare fp32"]
        speedup = rate["Trainer auto"] / rate["bare fp32"]
        print(f"  Trainer / bare loop (fp32):  {parity:.3f}   (target >= 0.97)")
        print(f"  auto / bare loop fp32:       {speedup:.2f}x  auto chose {chose}")
        ok &= parity >= 0.97
        ok &= speedup >= (2.0 if shape["n_embd"] >= 384 and chose.startswith("bf16") else 0.97)
    ok &= against_nanogpt(data, args.rounds, configs)
    return verdict(ok, args.smoke)


def verdict(ok: bool, smoke: bool) -> int:
    """Print whether the targets were met; the exit code (a smoke run judges none)."""
    if smoke:
        print("\nsmoke size: targets not judged")
        return 0
    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
