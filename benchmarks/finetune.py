"""Fine-tuning a GPT-2-small-shaped model: our Trainer against Hugging Face's `transformers.Trainer`.

A random GPT-2 of GPT-2 small's shape (12 layers, 12 heads, width 768, 50,257 tokens: 124M parameters)
is saved as a Hugging Face folder; both contenders load that folder and train it for --steps steps on
Tiny Shakespeare at context 256, batch 4, AdamW with cosine decay and clipping, on the CPU (or the GPU
when there is one). Ours runs as the app does (`model.init = FOLDER`, precision "auto"); theirs with
TrainingArguments' defaults plus the same settings. Each contender runs in its own process, so peak
memory (ru_maxrss) is its own; contenders alternate (A B, B A, ...) and medians are printed, because
these machines are shared and noisy. Tokens/s leave out the first two steps (allocator warm-up).

    python benchmarks/finetune.py [--rounds 2] [--steps 10] [--mode full|lora] [--smoke]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the model's shape, its tokenizer's vocabulary, context and batch: GPT-2 small's, and a tiny one for --smoke
SHAPES = {
    "GPT-2 small shape (124M)": dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50257, bpe=8000, context=256, batch=4),
    "smoke shape (2L/2H, width 64)": dict(n_layer=2, n_head=2, n_embd=64, vocab_size=1024, bpe=512, context=32, batch=2),
}
TEXT = Path(__file__).resolve().parents[1] / "resources" / "corpora" / "tinyshakespeare.txt.gz"


def make_model(folder: Path, shape: dict) -> Path:
    """A GPT-2 of that shape with random weights, and a byte-level BPE trained on the text, as save_pretrained writes."""
    import gzip

    import torch
    import transformers
    from tokenizers import ByteLevelBPETokenizer

    text = folder / "shakespeare.txt"
    text.write_text(gzip.decompress(TEXT.read_bytes()).decode("utf-8"), encoding="utf-8")
    model_dir = folder / "gpt2-small-random"
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator([text.read_text()], vocab_size=shape["bpe"], special_tokens=["<|endoftext|>"])
    model_dir.mkdir()
    tok.save(str(model_dir / "tokenizer.json"))
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=shape["vocab_size"], n_positions=1024, n_embd=shape["n_embd"],
                                     n_layer=shape["n_layer"], n_head=shape["n_head"], bos_token_id=0, eos_token_id=0)
    transformers.GPT2LMHeadModel(config).save_pretrained(model_dir)
    return model_dir


def run_ours(model_dir: Path, text: Path, steps: int, mode: str, context: int, batch: int) -> dict:
    from autogpt_gui.config import RunConfig
    from autogpt_gui.engine.session import build_session

    cfg = RunConfig().with_overrides([
        f"model.init='{model_dir}'", "data.source='file'", f"data.path='{text}'", "data.tokenizer='model'",
        f"model.block_size={context}", f"train.batch_size={batch}", f"train.max_steps={steps}",
        "train.eval_interval=1000000", "train.eval_batches=1", "train.checkpoint_interval=0",
        "train.sample_tokens=0", "optim.warmup_steps=1", "optim.lr=1e-4", "optim.min_lr=1e-5",
        f"model.finetune='{mode}'"])
    session = build_session(cfg)
    stamps: list[float] = []
    session.trainer.on("step", lambda m: stamps.append(time.perf_counter()))
    session.trainer.train()
    return {"stamps": stamps, "precision": session.trainer.precision}


def run_theirs(model_dir: Path, text: Path, steps: int, mode: str, context: int, batch: int) -> dict:
    import torch
    import transformers
    from tokenizers import Tokenizer

    ids = torch.tensor(Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode(text.read_text()).ids)

    class Windows(torch.utils.data.Dataset):
        def __len__(self):
            return steps * batch

        def __getitem__(self, i):
            start = int(torch.randint(0, len(ids) - context - 1, (1,), generator=torch.Generator().manual_seed(i)))
            w = ids[start:start + context + 1]
            return {"input_ids": w, "labels": w}  # the model shifts labels: context predictions, as ours

    stamps: list[float] = []

    class Clock(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    if mode == "lora":
        import peft

        model = peft.get_peft_model(model, peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, fan_in_fan_out=True,
                                                           target_modules=["c_attn", "c_proj", "c_fc"]))
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out, per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-4,
            weight_decay=0.1, adam_beta2=0.99, warmup_steps=1, lr_scheduler_type="cosine", max_grad_norm=1.0,
            logging_strategy="no", save_strategy="no", report_to=[], dataloader_num_workers=0, seed=1337,
            use_cpu=not torch.cuda.is_available())
        transformers.Trainer(model=model, args=args, train_dataset=Windows(), callbacks=[Clock()]).train()
    return {"stamps": stamps, "precision": "fp32 (TrainingArguments' default)"}


def worker(name: str, model_dir: Path, text: Path, steps: int, mode: str, shape: dict) -> None:
    context, batch = shape["context"], shape["batch"]
    result = (run_ours if name == "ours" else run_theirs)(model_dir, text, steps, mode, context, batch)
    stamps = result.pop("stamps")
    seconds = stamps[-1] - stamps[1]
    result.update(tokens_per_s=batch * context * (len(stamps) - 2) / seconds, steps=len(stamps),
                  peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--mode", choices=("full", "lora"), default="full")
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny shape, one round of 4 steps, in seconds (the test suite runs it): figures are printed")
    ap.add_argument("--worker", choices=("ours", "theirs"), help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    label, shape = list(SHAPES.items())[1 if args.smoke else 0]
    if args.smoke:
        args.rounds, args.steps = 1, 4
    if args.worker:
        return worker(args.worker, args.model_dir, args.model_dir.parent / "shakespeare.txt", args.steps, args.mode,
                      shape)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("AUTOGPT_GUI_HOME", str(Path(tmp) / "home"))
        model_dir = make_model(Path(tmp), shape)
        results: dict[str, list[dict]] = {"ours": [], "theirs": []}
        for r in range(args.rounds):
            for name in (("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")):
                out = subprocess.run([sys.executable, __file__, "--worker", name, "--model-dir", str(model_dir),
                                      "--steps", str(args.steps), "--mode", args.mode, *(["--smoke"] * args.smoke)],
                                     capture_output=True, text=True, check=False)
                line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
                if line is None:
                    sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
                res = json.loads(line[7:])
                results[name].append(res)
                print(f"round {r + 1} {name:6s}: {res['tokens_per_s']:8.1f} tokens/s, peak {res['peak_mb']:7.0f} MB"
                      f" ({res['precision']})", flush=True)
        med = {n: statistics.median(x["tokens_per_s"] for x in v) for n, v in results.items()}
        mem = {n: statistics.median(x["peak_mb"] for x in v) for n, v in results.items()}
        per_round = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(results["ours"], results["theirs"])]
        print(f"\n{args.mode} fine-tuning, {label}, context {shape['context']}, batch {shape['batch']}, "
              f"{args.steps} steps, {args.rounds} rounds:")
        print(f"  tokens/s  ours {med['ours']:.1f}  transformers.Trainer {med['theirs']:.1f}  "
              f"ratio ours/theirs {med['ours'] / med['theirs']:.3f}  (per round: "
              + ", ".join(f"{x:.3f}" for x in per_round) + ")")
        print(f"  peak memory  ours {mem['ours']:.0f} MB  transformers.Trainer {mem['theirs']:.0f} MB  "
              f"ratio {mem['ours'] / mem['theirs']:.3f}")


if __name__ == "__main__":
    main()
