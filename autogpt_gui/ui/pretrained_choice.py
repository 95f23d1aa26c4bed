"""The form's "Start from": a pretrained model fixes the shape and brings its tokenizer."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from autogpt_gui.config import RunConfig, tokenizer_kind
from autogpt_gui.errors import ConfigError
from autogpt_gui.pretrained import read_config, shape_of
from autogpt_gui.settings import setting

# what the form locks while a pretrained model decides it
LOCKED = ("model.preset", "model.n_layer", "model.n_head", "model.n_embd", "model.bias", "data.tokenizer", "model.arch",
          "model.n_kv_head", "model.head_dim", "model.intermediate_size", "model.rope_theta", "model.qk_norm",
          "model.tie_word_embeddings")
# what a pretrained model brought that goes back to a fresh model's value once it is removed
BROUGHT = ("n_positions", "vocab_size", "activation", "ln_eps", "finetune", "arch", "model_type", "n_kv_head",
           "head_dim", "intermediate_size", "rms_norm_eps", "rope_theta", "rope_scaling", "rope_factor",
           "rope_low_freq_factor", "rope_high_freq_factor", "rope_original_max_position_embeddings", "qk_norm",
           "attention_bias", "qkv_bias", "tie_word_embeddings", "sliding_window", "bos_token_id", "eos_token_ids",
           "pad_token_id")
LORA_KEYS = ("model.lora_rank", "model.lora_alpha", "model.lora_dropout", "model.lora_targets")


def take_pretrained(cfg: RunConfig) -> None:
    """Give cfg the shape of the model it starts from (or a fresh model's), and the automatic tokenizer."""
    shape: dict = {}
    folder = Path(cfg.model.init).expanduser()
    if cfg.model.init and folder.is_dir():
        try:
            shape = shape_of(read_config(folder), folder.name)
        except ConfigError:
            shape = {}  # validate() marks the field with what is wrong
    fresh = RunConfig().model
    # what the model taken in does not set is a fresh model's (a GPT-2 sets none of the llama fields)
    brought = {key: getattr(fresh, key) for key in BROUGHT if key != "finetune"}
    if cfg.model.init:
        cfg.model = replace(cfg.model, preset="custom", **{**brought, **shape})
        cfg.data = replace(cfg.data, tokenizer="auto")
        cfg.model.block_size = min(cfg.model.block_size, shape.get("n_positions", cfg.model.block_size))
    else:
        cfg.model = replace(cfg.model, **brought, finetune=fresh.finetune)
        if cfg.data.tokenizer == "model":
            cfg.data = replace(cfg.data, tokenizer="auto")


def automatic_text(cfg: RunConfig) -> str:
    """The tokenizer combo's "Automatic" item, with what it resolves to."""
    text = dict(setting("data.tokenizer").choices)["auto"]
    resolved = tokenizer_kind("auto", pretrained=bool(cfg.model.init))
    return f"{text} (the model's own)" if resolved == "model" else f"{text} ({resolved})"
