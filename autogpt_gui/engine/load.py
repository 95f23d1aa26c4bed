"""A trained model out of a run folder, a checkpoint or a Hugging Face folder, checked before anything is
allocated. Beside the session (it reads run folders), below export.
"""
from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path

import torch

from autogpt_gui.config import ModelConfig, RunConfig
from autogpt_gui.engine.data.tokenizers import Tokenizer, tokenizer_from_json
from autogpt_gui.engine.model.gpt import AutoGPTModel
from autogpt_gui.engine.model.lora import load_base, merged_state
from autogpt_gui.engine.run.checkpoints import load_checkpoint
from autogpt_gui.engine.run.layout import RunLayout
from autogpt_gui.errors import CheckpointError
from autogpt_gui.estimates import human_bytes, llama_layer_params, system_memory
from autogpt_gui.pretrained import is_hub_id

_BLOCK = re.compile(r"^blocks\.(\d+)\.")


def checkpoint_file(path: str | Path) -> Path:
    """A checkpoint file as given, or a run folder's best.pt, else its last.pt."""
    path = Path(path)
    if path.is_dir():
        files = RunLayout(path)
        for found in (files.best, files.last):
            if found.exists():
                return found
        raise CheckpointError(f"{path} holds no checkpoints yet; train first", "checkpoint")
    return path


def checked_model_config(state: dict, name: str, memory_limit: int | None = None) -> ModelConfig:
    """The checkpoint's model shape, refused unless it agrees with the tensors stored beside it and fits.

    A hostile or damaged file can claim 100,000 layers next to a few small tensors: everything here
    is arithmetic on the stored shapes, so nothing of the claimed size is ever allocated.
    """
    raw, tensors = state.get("model_config"), state.get("model")
    if not isinstance(raw, dict) or not isinstance(tensors, dict) or \
            not all(isinstance(t, torch.Tensor) for t in tensors.values()):
        raise CheckpointError(f"{name} lacks the model's shape or weights", "checkpoint")
    known = {f.name for f in fields(ModelConfig)}
    try:
        cfg = ModelConfig(**{k: v for k, v in raw.items() if k in known})
        ints = [int(getattr(cfg, k)) for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")]
    except (TypeError, ValueError):
        raise CheckpointError(f"{name} has a damaged model shape ({raw!r:.200})", "checkpoint") from None
    if min(ints) < 1 or cfg.n_embd % cfg.n_head:
        raise CheckpointError(f"{name} describes an impossible model ({_shape(cfg)})", "checkpoint")
    layers = {int(m.group(1)) for k in tensors if (m := _BLOCK.match(k))}
    if cfg.finetune == "lora":  # adapters only: the base's own files bound its size (hf.lora_base checks them)
        if not tensors or not layers <= set(range(cfg.n_layer)) or any(".lora_" not in k for k in tensors):
            raise CheckpointError(f"{name} claims to hold LoRA adapters but its tensors are not adapters for "
                                  f"its model ({_shape(cfg)})", "checkpoint")
        return cfg
    problems = []
    if len(layers) != cfg.n_layer:
        problems.append(f"it claims {cfg.n_layer} layers but holds weights for {len(layers)}")
    sizes = {"wte.weight": (cfg.vocab_size, cfg.n_embd), "wpe.weight": (cfg.n_positions or cfg.block_size, cfg.n_embd)}
    if cfg.arch == "llama":  # rotary positions: no position table; the layers' claimed size must be stored
        del sizes["wpe.weight"]
        if cfg.n_layer * llama_layer_params(cfg) > sum(t.numel() for t in tensors.values()):
            problems.append("its layers claim more weights than it holds")
    for key, want in sizes.items():
        got = tuple(tensors[key].shape) if key in tensors else None
        if got != want:
            problems.append(f"{key} is {got} where the shape needs {want}")
    # Layers, width, vocabulary and positions now agree with the file, so a model of this shape is no
    # bigger than the tensors stored: building it is safe, and a strict load reports any other mismatch.
    if problems:
        raise CheckpointError(f"{name} does not match its own model shape ({_shape(cfg)}): "
                              + "; ".join(problems[:3]), "checkpoint")
    needed = sum(t.numel() * 4 for k, t in tensors.items() if k != "lm_head.weight")
    limit = memory_limit if memory_limit is not None else system_memory()
    if limit and needed > limit:
        raise CheckpointError(f"{name} needs about {human_bytes(needed)} of memory for its weights but this "
                              f"computer has {human_bytes(limit)} available", "checkpoint")
    return cfg


def mismatch_error(err: RuntimeError, name: str, cfg: ModelConfig) -> CheckpointError:
    """torch's page of missing and unexpected keys as one sentence naming the checkpoint."""
    lines = [ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()] or [str(err)]
    return CheckpointError(f"{name} does not fit this model ({_shape(cfg)}): " + "; ".join(lines[:2])[:400],
                           "checkpoint")


def _shape(cfg: ModelConfig) -> str:
    return (f"{cfg.n_layer} layers, {cfg.n_head} heads, width {cfg.n_embd}, context {cfg.block_size}, "
            f"vocabulary {cfg.vocab_size}")


def load_model(path: str | Path, device: str = "cpu") -> tuple[AutoGPTModel, Tokenizer, RunConfig]:
    """Model, tokenizer and config from a checkpoint file or a run folder (its best, else last)."""
    model, tokenizer, run_cfg, _ = load_trained(path, device)
    return model, tokenizer, run_cfg


def load_trained(path: str | Path, device: str = "cpu") -> tuple[AutoGPTModel, Tokenizer, RunConfig, dict]:
    """load_model's three, and the trainer's counters at that checkpoint (step, tokens seen, losses).

    A Hugging Face GPT-2 folder or hub id loads too, as it is before any training (the playground's base).
    """
    if _is_pretrained(path):
        return _pretrained(str(path), device)
    path = checkpoint_file(path)
    state = load_checkpoint(path, map_location="cpu")
    cfg = checked_model_config(state, path.name)
    try:
        tokenizer = tokenizer_from_json(state["tokenizer"])
        run_cfg = RunConfig.from_dict(state["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path.name} lacks what sampling needs ({err})", "checkpoint") from None
    base = None
    if cfg.finetune == "lora":  # checked before the model is built: the base must be the one adapted
        from autogpt_gui.engine.model.hf import lora_base

        base, _ = lora_base(cfg.init, cfg, state.get("base") if isinstance(state.get("base"), dict) else {})
    model = AutoGPTModel(cfg)
    try:
        if base is not None:
            load_base(model, base)
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise mismatch_error(err, path.name, cfg) from None
    if base is not None:
        model = merge_adapters(model)
    trainer = state.get("trainer")
    counters: dict = trainer if isinstance(trainer, dict) else {}
    return model.to(device).eval(), tokenizer, run_cfg, {**counters, "checkpoint": str(path)}


def load_chat(path: str | Path, device: str = "cpu"):
    """Model, tokenizer and chat template (the one it was trained with, else its folder's, else ChatML) of a run
    folder, checkpoint file or Hugging Face folder: what a chat with it needs."""
    from autogpt_gui.engine.model.chat import run_template

    model, tokenizer, _ = load_model(path, device)
    return model, tokenizer, run_template(tokenizer, model.config)


def merge_adapters(model: AutoGPTModel) -> AutoGPTModel:
    """A plain model whose weights are the LoRA model's with every adapter folded in (same outputs, faster)."""
    plain = AutoGPTModel(replace(model.config, finetune="full"))
    plain.load_state_dict(merged_state(model))
    return plain


def _is_pretrained(path: str | Path) -> bool:
    p = Path(path).expanduser()
    return (p.is_dir() and (p / "config.json").is_file() and not RunLayout(p).checkpoints.is_dir()) or \
        is_hub_id(str(path))


def _pretrained(init: str, device: str) -> tuple[AutoGPTModel, Tokenizer, RunConfig, dict]:
    from autogpt_gui.engine.model.hf import load_pretrained

    pre = load_pretrained(init)
    shape = replace(pre.shape, block_size=pre.shape.n_positions)
    model = AutoGPTModel(shape)
    model.load_state_dict(pre.state)
    run_cfg = RunConfig(name=pre.folder.name, model=shape, data=replace(RunConfig().data, tokenizer="model"))
    return model.to(device).eval(), pre.tokenizer, run_cfg, {}
