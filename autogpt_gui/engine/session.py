"""From a RunConfig to a ready Trainer: data, tokenizer, model, optimizer, schedule, run folder.

The command line and the GUI worker both start and resume runs through here.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from autogpt_gui import length, paths
from autogpt_gui.config import RunConfig, check
from autogpt_gui.engine.data.chat_loader import ChatData, chat_loaders, fit_chat_tokenizer, prepare_chat
from autogpt_gui.engine.data.loaders import EpochLoader, EvalLoader, RandomWindowLoader
from autogpt_gui.engine.data.sources import TokenData, check_lengths, make_source, prepare_tokens
from autogpt_gui.engine.data.tasks import held_out, task_accuracy, worked_examples
from autogpt_gui.engine.data.tokenizers import Tokenizer, tokenizer_from_json
from autogpt_gui.engine.load import checked_model_config, mismatch_error
from autogpt_gui.engine.model.chat import held_out_replies
from autogpt_gui.engine.model.generate import generate_text
from autogpt_gui.engine.model.gpt import AutoGPTModel, GPTConfig
from autogpt_gui.engine.model.hf import imported_shape, load_pretrained, load_weights, lora_base, model_folder
from autogpt_gui.engine.model.lora import load_base
from autogpt_gui.engine.run.checkpoints import load_checkpoint
from autogpt_gui.engine.run.control import ControlFile
from autogpt_gui.engine.run.disk import writing_into
from autogpt_gui.engine.run.runs import Run
from autogpt_gui.engine.train import distributed
from autogpt_gui.engine.train.edits import LiveEdits
from autogpt_gui.engine.train.guards import DivergenceGuard, EarlyStop, HalveOnOOM
from autogpt_gui.engine.train.optimizers import build_optimizer
from autogpt_gui.engine.train.precision import device_memory, pick_device
from autogpt_gui.engine.train.schedules import make_schedule
from autogpt_gui.engine.train.trainer import Trainer
from autogpt_gui.errors import CheckpointError, ConfigError, DataError
from autogpt_gui.estimates import memory_problems


@dataclass
class Session:
    """Everything one run needs, built and wired."""

    config: RunConfig
    run: Run | None
    data: TokenData | ChatData
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


def prepare_data(cfg: RunConfig, progress=None, cancelled=None, tokenizer: Tokenizer | None = None) -> TokenData:
    """Tokenize (or reuse cached tokens of) the configured source and check it fits the context."""
    with writing_into(paths.cache_dir(), "the token cache"):
        data = prepare_tokens(make_source(cfg.data), cfg.data, paths.cache_dir(),
                              progress or (lambda phase, f: None), cancelled or (lambda: False), tokenizer)
    check_lengths(data, cfg.model.block_size)
    return data


def prepare_chat_data(cfg: RunConfig, progress=None, cancelled=None, tokenizer: Tokenizer | None = None) -> ChatData:
    """Read, template, tokenize and pack a chat source (data.source "chat"); a pretrained model's folder gives
    its template ("model") and its tokenizer."""
    folder = model_folder(cfg.model.init) if cfg.model.init else None
    with writing_into(paths.cache_dir(), "the token cache"):
        return prepare_chat(cfg.data, cfg.model.block_size, tokenizer, folder, progress, cancelled, paths.cache_dir())


def chat_tokenizer(cfg: RunConfig) -> Tokenizer:
    """The tokenizer (with its chat template) a chat run of cfg reads with, without building a model."""
    if cfg.model.init:
        pre = load_pretrained(cfg.model.init, weights=False)
        return fit_chat_tokenizer(cfg.data, pre.tokenizer, pre.folder)
    return fit_chat_tokenizer(cfg.data)


def model_config(cfg: RunConfig, vocab_size: int) -> GPTConfig:
    m = cfg.model
    if m.vocab_size and m.vocab_size < vocab_size:
        raise DataError(f"vocabulary size {m.vocab_size} is smaller than the tokenizer's {vocab_size}; "
                        "set 0 to take it from the tokenizer", "model.vocab_size")
    return replace(m, vocab_size=m.vocab_size or vocab_size)


def check_memory(cfg: RunConfig, device, vocab_size: int | None = None) -> None:
    """Refuse, before anything is allocated, a run whose estimated training memory exceeds the device's."""
    limit, where = device_memory(device)
    found = memory_problems(cfg, limit, where, vocab_size)
    if found:
        raise ConfigError(found)


class TextSampler:
    """model -> (prompt, text): a short continuation of the prompt, seeded by how many samples came before.
    `prompt` and `tokens` may change between steps (live edits)."""

    def __init__(self, tokenizer: Tokenizer, prompt: str, tokens: int, seed: int):
        self.tokenizer, self.prompt, self.tokens, self.seed = tokenizer, prompt, tokens, seed
        self.count = 0

    def __call__(self, model) -> tuple[str, str]:
        self.count += 1
        prompt = self.prompt or "\n"
        text = generate_text(model, self.tokenizer, prompt, self.tokens, temperature=0.8, top_k=50,
                             seed=self.seed + self.count)
        return prompt, text


def make_sampler(tokenizer: Tokenizer, cfg: RunConfig) -> Callable:
    """A TextSampler of the configured prompt; for task data, a few held-out examples with the model's answer
    and the right one."""
    if cfg.data.source.startswith("task:"):
        examples = held_out(cfg.data, limit=6)
        return lambda model: ("held-out examples:\n", worked_examples(model, tokenizer, examples))
    return TextSampler(tokenizer, cfg.train.sample_prompt, cfg.train.sample_tokens, cfg.train.seed)


def make_scorer(tokenizer: Tokenizer, cfg: RunConfig) -> Callable | None:
    """model -> {"accuracy": exact-match share of held-out examples} for task data; None for text."""
    if not cfg.data.source.startswith("task:"):
        return None
    examples = held_out(cfg.data)
    return lambda model: {"accuracy": task_accuracy(model, tokenizer, examples)}


def build_session(cfg: RunConfig, run: Run | None = None, resume_from: str | Path | None = None,
                  progress=None, cancelled=None, extend: int = 0) -> Session:
    """Validate, prepare data and build model, optimizer and Trainer; restore a checkpoint if given, and
    `extend` it by that many steps (its schedule goes on from where it is; the run's config.toml says so).

    A run folder is written by this process only (Run.writing: a second trainer is refused, naming the
    first); the lock goes when the run ends, or here if building fails.
    """
    check(cfg)
    if run is None:
        return _extended(_build(cfg, None, resume_from, progress, cancelled), extend)
    with run.writing():
        return _extended(_build(cfg, run, resume_from, progress, cancelled), extend)


def _extended(session: Session, steps: int) -> Session:
    if steps:
        edits = session.trainer.extensions["edits"]
        assert isinstance(edits, LiveEdits)
        edits.extend(session.trainer, steps)
        session.config = edits.cfg
        if session.run is not None:
            edits.cfg.save(session.run.files.config)
    return session


def _build(cfg: RunConfig, run: Run | None, resume_from, progress, cancelled) -> Session:
    state = load_checkpoint(resume_from) if resume_from else None
    r = distributed.ranks()  # a torchrun job: this process trains its slice of every batch
    device = distributed.device_for(pick_device(cfg.train.device), r)
    saved_shape = checked_model_config(state, Path(resume_from).name) if state is not None and resume_from else None
    shape, weights, tokenizer = None, None, None
    if cfg.model.init:  # a pretrained GPT-2: its shape and tokenizer (from the checkpoint when resuming)
        if saved_shape is not None and state is not None:
            shape, tokenizer = saved_shape, tokenizer_from_json(state["tokenizer"])
        else:
            pre = load_pretrained(cfg.model.init, weights=False)
            shape, tokenizer = imported_shape(pre, cfg.model), pre.tokenizer
    check_memory(replace(cfg, model=shape) if shape else cfg, device)
    base = None
    if shape is not None and shape.finetune == "lora":  # adapters on a frozen base named by its content
        weights, base = lora_base(cfg.model.init, shape, state.get("base") if state is not None else None)
    elif cfg.model.init and state is None:
        weights = load_weights(pre)
    data = prepare_chat_data(cfg, progress, cancelled, tokenizer) if cfg.data.source == "chat" else \
        prepare_data(cfg, progress, cancelled, tokenizer)
    if state is not None and state.get("tokenizer") and \
            json.loads(state["tokenizer"]) != json.loads(data.tokenizer.to_json()):
        raise CheckpointError("the data's tokenizer differs from the one this checkpoint was trained with "
                              "(was the source file changed?); restore the original data to resume", "data.path")
    seed_everything(cfg.train.seed)
    model = AutoGPTModel(shape or model_config(cfg, data.tokenizer.vocab_size))
    if base is not None and weights is not None:
        load_base(model, weights)
    elif weights is not None:
        model.load_state_dict(weights)
    model.to(device)
    optimizer = build_optimizer(model, cfg.optim, device)
    t = cfg.train
    loader_cls = EpochLoader if t.epochs else RandomWindowLoader
    loaders: tuple = chat_loaders(data, t, device, r.rank, r.world) if isinstance(data, ChatData) else (
        loader_cls(data.train, t.batch_size, cfg.model.block_size, seed=t.seed, device=device, rank=r.rank,
                   world=r.world),
        EvalLoader(data.val, t.batch_size, cfg.model.block_size, t.eval_batches, device=device, rank=r.rank,
                   world=r.world))
    train_loader, val_loader = loaders
    planned = length.plan(t.max_steps, t.epochs, max(1, len(train_loader) // t.grad_accum)).planned_steps
    assert planned is not None  # known: our loaders have a length
    schedule = make_schedule(cfg.optim.schedule, cfg.optim.lr, cfg.optim.min_lr, cfg.optim.warmup_steps,
                             planned, cfg.optim.decay_fraction)
    extra = {"config": cfg.to_dict(), "model_config": asdict(model.config),
             "tokenizer": data.tokenizer.to_json(), **({"base": base} if base else {})}
    trainer = Trainer(model, optimizer, train_loader, val_loader, device=device, config=t, schedule=schedule,
                      checkpoints=run.checkpoint_folder(t.keep_last) if run else None,
                      sampler=(held_out_replies(data.template, data.held_out, t.sample_tokens)
                               if isinstance(data, ChatData) else make_sampler(data.tokenizer, cfg))
                      if t.sample_tokens and r.main else None,
                      scorer=make_scorer(data.tokenizer, cfg) if r.main else None,
                      grad_clip=cfg.optim.grad_clip, extra_state=extra)
    trainer.add("edits", LiveEdits(cfg))
    if t.early_stop_patience:
        trainer.add("early_stop", EarlyStop(t.early_stop_patience, t.early_stop_min_delta))
    if t.on_divergence == "rollback":
        trainer.add("divergence", DivergenceGuard(t.spike_factor))
    if t.on_oom in ("halve", "ask") and not r.active:  # one rank alone cannot change the job's batch
        trainer.add("oom", HalveOnOOM())
    if r.active:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        trainer.forward_through(ddp)
        trainer.add("ranks", distributed.Coordinator(r))
    if run is not None:
        trainer.add("control", ControlFile(run.path))
        run.attach(trainer)
        data.tokenizer.save(run.files.tokenizer)
    if state is not None:
        try:
            trainer.load_state_dict(state)
        except RuntimeError as err:  # the configuration's model and the checkpoint's differ
            raise mismatch_error(err, Path(resume_from or "").name, model.config) from None
    if r.active:  # precision "auto" would be timed on each rank: all ranks take rank 0's choice
        trainer.prepare()
        trainer.precision, trainer.precision_reason = distributed.from_rank0((trainer.precision,
                                                                              trainer.precision_reason))
    return Session(cfg, run, data, model, optimizer, trainer)
