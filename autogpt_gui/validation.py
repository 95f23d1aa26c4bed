"""validate(): every problem of a RunConfig as (field, message) pairs, for the form to show at each field and
the command line to print at once. Bounds and choices come from the settings' descriptions.
"""
from __future__ import annotations

import math
from pathlib import Path

from autogpt_gui.config import (
    FINETUNE,
    LORA_TARGETS,
    RunConfig,
)
from autogpt_gui.pretrained import architecture_problems, pretrained_problems
from autogpt_gui.settings import PRESETS, SETTINGS, choices_of


def _bounds(p: list[tuple[str, str]], cfg: RunConfig, *keys: str) -> None:
    """Add validate()'s message for each setting whose value is outside its described bounds."""
    for key in keys:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if not SETTINGS[key].accepts(value):
            p.append((key, SETTINGS[key].refused(value)))


def _choice(p: list[tuple[str, str]], cfg: RunConfig, key: str, what: str, listed: bool = True) -> None:
    """Add validate()'s message when a choice setting holds a value it does not offer."""
    section, name = key.split(".")
    value, offered = getattr(getattr(cfg, section), name), choices_of(key)
    if value not in offered:
        p.append((key, f"unknown {what} '{value}'; choose {_one_of(offered, listed)}"))


def _one_of(values: tuple[str, ...], listed: bool = True) -> str:
    """'one of a, b, c' (listed) or 'a, b or c'."""
    return f"one of {', '.join(values)}" if listed else ", ".join(values[:-1]) + " or " + values[-1]


def validate(cfg: RunConfig) -> list[tuple[str, str]]:
    p: list[tuple[str, str]] = []
    m, d, o, t = cfg.model, cfg.data, cfg.optim, cfg.train

    if m.preset not in PRESETS and m.preset != "custom":
        p.append(("model.preset", f"unknown preset '{m.preset}'; choose one of {', '.join(PRESETS)} or custom"))
    _bounds(p, cfg, "model.n_layer", "model.n_head", "model.n_embd", "model.block_size")
    if m.n_head >= 1 and m.n_embd >= 1 and m.n_embd % m.n_head:
        ok = [h for h in (1, 2, 4, 6, 8, 12, 16) if m.n_embd % h == 0 and h <= m.n_embd]
        p.append(("model.n_head", f"heads ({m.n_head}) must divide the width ({m.n_embd}): try {' or '.join(map(str, ok[-3:]))} heads"))
    _bounds(p, cfg, "model.dropout", "model.vocab_size")
    _choice(p, cfg, "model.activation", "activation")
    _bounds(p, cfg, "model.ln_eps")
    if m.n_positions and m.n_positions < m.block_size:
        p.append(("model.block_size", f"context ({m.block_size}) must not exceed the model's positions "
                                      f"({m.n_positions}); try {m.n_positions} or less"))
    if m.init:
        p.extend(pretrained_problems(m.init, m.block_size))
    p.extend(_lora_problems(cfg))
    p.extend(architecture_problems(m))
    if m.init and d.tokenizer not in ("auto", "model"):
        p.append(("data.tokenizer", "a pretrained model reads text with its own tokenizer: choose 'auto' or 'model'"))
    elif not m.init and d.tokenizer == "model":
        p.append(("data.tokenizer", "'model' is the tokenizer of a pretrained model; choose auto, char, byte or "
                                    "bpe, or a model to start from"))

    _choice(p, cfg, "data.source", "source")
    if d.source in ("file", "folder", "jsonl", "chat"):
        path = Path(d.path).expanduser()
        if not d.path:
            p.append(("data.path", f"a {d.source} source needs a path; choose one"))
        elif not path.exists():
            p.append(("data.path", f"{d.path} does not exist; check the path"))
        elif d.source == "folder" and not path.is_dir():
            p.append(("data.path", f"{d.path} is a file; choose a folder or use source 'file'"))
        elif d.source in ("file", "jsonl") and path.is_dir():
            p.append(("data.path", f"{d.path} is a folder; choose a file or use source 'folder'"))
    _choice(p, cfg, "data.tokenizer", "tokenizer")
    if d.source == "chat":
        p.extend(_chat_problems(cfg))
    if d.tokenizer == "bpe":
        _bounds(p, cfg, "data.bpe_vocab_size")
    _bounds(p, cfg, "data.val_fraction")
    if d.source.startswith("task:"):
        _bounds(p, cfg, "data.task_digits")

    _choice(p, cfg, "optim.name", "optimizer")
    _bounds(p, cfg, "optim.lr", "optim.min_lr", "optim.muon_lr")
    if SETTINGS["optim.min_lr"].accepts(o.min_lr) and math.isfinite(o.lr) and o.min_lr > o.lr:
        p.append(("optim.min_lr", f"({o.min_lr}) must not exceed the learning rate ({o.lr}); try lr/10"))
    _bounds(p, cfg, "optim.beta1", "optim.beta2", "optim.weight_decay")
    _choice(p, cfg, "optim.schedule", "schedule")
    _bounds(p, cfg, "optim.warmup_steps")
    if SETTINGS["optim.warmup_steps"].accepts(o.warmup_steps) and t.epochs == 0 and t.max_steps >= 1 and \
            o.warmup_steps >= t.max_steps:
        p.append(("optim.warmup_steps", f"({o.warmup_steps}) must be below max steps ({t.max_steps}); try {max(0, t.max_steps // 10)}"))
    _bounds(p, cfg, "optim.decay_fraction", "optim.grad_clip")

    _bounds(p, cfg, "train.batch_size", "train.grad_accum", "train.eval_interval", "train.eval_batches",
            "train.keep_last", "train.log_interval")
    if t.max_steps < 1 and t.epochs < 1:
        p.append(("train.max_steps", "set max steps or epochs to at least 1"))
    _bounds(p, cfg, "train.epochs", "train.checkpoint_interval")
    _choice(p, cfg, "train.precision", "precision")
    dev = t.device
    if not (dev in ("auto", "cpu", "cuda", "mps", "cuda:all") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        p.append(("train.device", f"unknown device '{dev}'; use auto, cpu, cuda, cuda:N, cuda:all or mps"))
    _bounds(p, cfg, "train.sample_tokens", "train.early_stop_patience", "train.early_stop_min_delta")
    _choice(p, cfg, "train.on_divergence", "choice", listed=False)
    _choice(p, cfg, "train.on_oom", "choice", listed=False)
    _bounds(p, cfg, "train.spike_factor")
    return p


def _lora_problems(cfg: RunConfig) -> list[tuple[str, str]]:
    m = cfg.model
    if m.finetune not in FINETUNE:
        return [("model.finetune", f"unknown mode '{m.finetune}'; choose {_one_of(FINETUNE, listed=False)}")]
    if m.finetune == "full":
        return []
    p: list[tuple[str, str]] = []
    if not m.init:
        p.append(("model.finetune", "LoRA adapts a pretrained model: choose one to start from, or full training"))
    if not (SETTINGS["model.lora_rank"].accepts(m.lora_rank) and m.lora_rank <= max(1, m.n_embd)):
        p.append(("model.lora_rank", f"must be between 1 and the width ({m.n_embd}); 8 or 16 is usual"))
    _bounds(p, cfg, "model.lora_alpha", "model.lora_dropout")
    names = [t.strip() for t in m.lora_targets.split(",") if t.strip()]
    wrong = [t for t in names if t not in LORA_TARGETS]
    if not names or wrong:
        p.append(("model.lora_targets", (f"unknown layer {', '.join(map(repr, wrong))}; " if wrong else "") +
                  f"list one or more of {', '.join(LORA_TARGETS)}, separated by commas"))
    return p


def _chat_problems(cfg: RunConfig) -> list[tuple[str, str]]:
    """data.chat_template names a template that exists; its text is checked (sandboxed) when the data is built."""
    d = cfg.data
    p: list[tuple[str, str]] = []
    _choice(p, cfg, "data.train_on", "choice", listed=False)
    if d.chat_template not in ("model", "chatml"):
        path = Path(d.chat_template).expanduser()
        if not d.chat_template.strip():
            p.append(("data.chat_template", "choose model, chatml or the path of a Jinja template file"))
        elif not path.is_file():
            p.append(("data.chat_template", f"{d.chat_template} is not a file; choose model, chatml or the path of "
                                            "a Jinja template file"))
    return p
