"""From a RunConfig to a ready Trainer: data, tokenizer, model, optimizer, schedule, run folder.

The command line and the GUI worker both start and resume runs through here.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from autogpt_gui import paths
from autogpt_gui.config import RunConfig, check
from autogpt_gui.engine.checkpoint import load_checkpoint
from autogpt_gui.engine.data import TokenData, check_lengths, make_source, prepare_tokens
from autogpt_gui.engine.loaders import EpochLoader, EvalLoader, RandomWindowLoader
from autogpt_gui.engine.model import AutoGPTModel, GPTConfig
from autogpt_gui.engine.precision import pick_device
from autogpt_gui.engine.runs import Run
from autogpt_gui.engine.schedules import make_schedule
from autogpt_gui.engine.tokenizers import Tokenizer, tokenizer_from_json
from autogpt_gui.engine.trainer import Trainer
from autogpt_gui.errors import CheckpointError, DataError


@dataclass
class Session:
    """Everything one run needs, built and wired."""

    config: RunConfig
    run: Run | None
    data: TokenData
    model: AutoGPTModel
    optimizer: torch.optim.Optimizer
    trainer: Trainer

    @property
    def tokenizer(self) -> Tokenizer:
        return self.data.tokenizer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare_data(cfg: RunConfig, progress=None, cancelled=None) -> TokenData:
    """Tokenize (or reuse cached tokens of) the configured source and check it fits the context."""
    data = prepare_tokens(make_source(cfg.data), cfg.data, paths.cache_dir(),
                          progress or (lambda phase, f: None), cancelled or (lambda: False))
    check_lengths(data, cfg.model.block_size)
    return data


def model_config(cfg: RunConfig, vocab_size: int) -> GPTConfig:
    m = cfg.model
    if m.vocab_size and m.vocab_size < vocab_size:
        raise DataError(f"vocabulary size {m.vocab_size} is smaller than the tokenizer's {vocab_size}; "
                        "set 0 to take it from the tokenizer", "model.vocab_size")
    return GPTConfig(vocab_size=m.vocab_size or vocab_size, block_size=m.block_size, n_layer=m.n_layer,
                     n_head=m.n_head, n_embd=m.n_embd, dropout=m.dropout, bias=m.bias)


def build_optimizer(model: torch.nn.Module, cfg: RunConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW / Adam / SGD; weight decay only on matrices (not biases, norms); fused on CUDA."""
    o = cfg.optim
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), **extra)
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=o.lr, betas=(o.beta1, o.beta2), **extra)
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.beta1)


def make_sampler(tokenizer: Tokenizer, cfg: RunConfig) -> Callable:
    """model -> (prompt, text): a short continuation of the configured prompt, seeded by step."""
    prompt = cfg.train.sample_prompt or "\n"
    n = cfg.train.sample_tokens
    counter = [0]

    def sample(model) -> tuple[str, str]:
        counter[0] += 1
        text = generate_text(model, tokenizer, prompt, n, temperature=0.8, top_k=50,
                             seed=cfg.train.seed + counter[0])
        return prompt, text

    return sample


def encode_prompt(tokenizer: Tokenizer, prompt: str) -> list[int]:
    ids = tokenizer.encode(prompt, strict=False) if prompt else []
    return ids or tokenizer.encode("\n", strict=False) or [0]


def generate_text(model, tokenizer: Tokenizer, prompt: str, max_new_tokens: int, temperature: float = 0.8,
                  top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                  on_text: Callable[[str], None] | None = None) -> str:
    """The continuation of prompt (without the prompt); on_text receives each new piece of text."""
    device = next(model.parameters()).device
    idx = torch.tensor([encode_prompt(tokenizer, prompt)], device=device)
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    new_ids: list[int] = []
    shown = [""]

    def on_token(t):
        new_ids.append(int(t[0]))
        if on_text is not None:
            text = tokenizer.decode(new_ids)
            if not text.endswith("\ufffd"):  # wait for a whole UTF-8 character
                on_text(text[len(shown[0]):])
                shown[0] = text

    model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                   generator=gen, on_token=on_token)
    return tokenizer.decode(new_ids)


def build_session(cfg: RunConfig, run: Run | None = None, resume_from: str | Path | None = None,
                  progress=None, cancelled=None) -> Session:
    """Validate, prepare data and build model, optimizer and Trainer; restore a checkpoint if given."""
    check(cfg)
    state = load_checkpoint(resume_from) if resume_from else None
    device = pick_device(cfg.train.device)
    data = prepare_data(cfg, progress, cancelled)
    if state is not None and state.get("tokenizer") and \
            json.loads(state["tokenizer"]) != json.loads(data.tokenizer.to_json()):
        raise CheckpointError("the data's tokenizer differs from the one this checkpoint was trained with "
                              "(was the source file changed?); restore the original data to resume", "data.path")
    seed_everything(cfg.train.seed)
    model = AutoGPTModel(model_config(cfg, data.tokenizer.vocab_size))
    model.to(device)
    optimizer = build_optimizer(model, cfg, device)
    t = cfg.train
    total = t.max_steps
    if t.epochs:
        steps_per_epoch = len(EpochLoader(data.train, t.batch_size, cfg.model.block_size)) // t.grad_accum
        total = max(1, steps_per_epoch * t.epochs)
    loader_cls = EpochLoader if t.epochs else RandomWindowLoader
    train_loader = loader_cls(data.train, t.batch_size, cfg.model.block_size, seed=t.seed, device=device)
    val_loader = EvalLoader(data.val, t.batch_size, cfg.model.block_size, t.eval_batches, device=device)
    schedule = make_schedule(cfg.optim.schedule, cfg.optim.lr, cfg.optim.min_lr, cfg.optim.warmup_steps,
                             total, cfg.optim.decay_fraction)
    extra = {"config": cfg.to_dict(), "model_config": asdict(model.config),
             "tokenizer": data.tokenizer.to_json()}
    trainer = Trainer(model, optimizer, train_loader, val_loader, device=device, config=t, schedule=schedule,
                      checkpoints=run.checkpoint_folder(t.keep_last) if run else None,
                      sampler=make_sampler(data.tokenizer, cfg) if t.sample_tokens else None,
                      grad_clip=cfg.optim.grad_clip, extra_state=extra)
    if run is not None:
        trainer.max_steps = total if not t.epochs else None
        run.attach(trainer)
        data.tokenizer.save(run.path / "tokenizer.json")
    if state is not None:
        trainer.load_state_dict(state)
    return Session(cfg, run, data, model, optimizer, trainer)


def load_model(path: str | Path, device: str = "cpu") -> tuple[AutoGPTModel, Tokenizer, RunConfig]:
    """Model, tokenizer and config from a checkpoint file or a run folder (its best, else last)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / "checkpoints" / name).exists():
                path = path / "checkpoints" / name
                break
        else:
            raise CheckpointError(f"{path} holds no checkpoints yet; train first", "checkpoint")
    state = load_checkpoint(path, map_location=device)
    try:
        model = AutoGPTModel(GPTConfig(**state["model_config"]))
        model.load_state_dict(state["model"])
        tokenizer = tokenizer_from_json(state["tokenizer"])
        cfg = RunConfig.from_dict(state["config"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path.name} lacks what sampling needs ({err})", "checkpoint") from None
    return model.to(device).eval(), tokenizer, cfg
