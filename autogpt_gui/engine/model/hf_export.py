"""Our model out as a Hugging Face folder that `transformers` loads with no code of ours, in its own model_type.

A gpt2-kind model writes GPT2LMHeadModel; a llama-kind model writes the model_type it was imported from, or
for one made here the family its flags need (q/k norm: qwen3, q/k/v bias only: qwen2, a sliding window:
mistral, else llama). The tokenizer goes out as an HF tokenizer.json that encodes text to our ids for every
tokenizer we train, with the special tokens named in tokenizer_config.json and generation_config.json. A model
trained on conversations writes its chat template (tokenizer_config.json's chat_template and chat_template.jinja)
and its end-of-turn token as generation's eos, so `apply_chat_template` gives the ids it was trained on and
`generate` stops at the end of the turn.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from autogpt_gui.engine.data.tokenizers import BPETokenizer, ByteTokenizer, CharTokenizer, Tokenizer
from autogpt_gui.engine.model.chat import export_template
from autogpt_gui.engine.model.hf_names import to_hf
from autogpt_gui.engine.model.lora import merged_state
from autogpt_gui.errors import CheckpointError, DataError
from autogpt_gui.estimates import head_size, kv_heads, mlp_width
from autogpt_gui.pretrained import eos_ids

CLASSES = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
           "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}


def hf_state(model) -> dict[str, torch.Tensor]:
    """Our weights, any adapters folded in, under the architecture's Hugging Face names and layouts."""
    return to_hf(merged_state(model), model.config)


def hf_model_type(cfg) -> str:
    """The model_type an export declares: the one imported from, else the family the flags need."""
    if cfg.arch == "gpt2":
        return "gpt2"
    if cfg.model_type:
        return cfg.model_type
    if cfg.qk_norm:
        return "qwen3"
    if cfg.qkv_bias and not cfg.attention_bias:
        return "qwen2"
    return "mistral" if cfg.sliding_window else "llama"


def hf_config(model, tokenizer: Tokenizer) -> dict:
    """config.json: the model's shape under its architecture's Hugging Face names."""
    cfg = model.config
    special = _special_ids(cfg, tokenizer)
    common = {"vocab_size": cfg.vocab_size, "tie_word_embeddings": cfg.tie_word_embeddings, "torch_dtype": "float32",
              "bos_token_id": special["bos"], "eos_token_id": special["eos"], "pad_token_id": special["pad"]}
    if cfg.arch == "gpt2":
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", **common,
                "n_positions": cfg.n_positions or cfg.block_size, "n_embd": cfg.n_embd, "n_layer": cfg.n_layer,
                "n_head": cfg.n_head, "n_inner": None,
                "activation_function": "gelu_new" if cfg.activation == "gelu_tanh" else "gelu",
                "layer_norm_epsilon": cfg.ln_eps, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
                "initializer_range": 0.02, "scale_attn_weights": True}
    kind = hf_model_type(cfg)
    out = {"architectures": [CLASSES[kind]], "model_type": kind, **common, "hidden_size": cfg.n_embd,
           "intermediate_size": mlp_width(cfg), "num_hidden_layers": cfg.n_layer,
           "num_attention_heads": cfg.n_head, "num_key_value_heads": kv_heads(cfg), "head_dim": head_size(cfg),
           "hidden_act": "silu", "max_position_embeddings": cfg.n_positions or cfg.block_size,
           "rms_norm_eps": cfg.rms_norm_eps, "rope_theta": cfg.rope_theta, "rope_scaling": _rope_scaling(cfg),
           "attention_dropout": 0.0, "initializer_range": 0.02}
    if kind in ("llama", "qwen3"):
        out["attention_bias"] = cfg.attention_bias
    if kind == "llama":
        out["mlp_bias"] = cfg.bias
    if kind == "mistral":
        out["sliding_window"] = cfg.sliding_window or None
    if kind in ("qwen2", "qwen3"):
        out.update(use_sliding_window=False, sliding_window=None, max_window_layers=cfg.n_layer)
    return out


def _rope_scaling(cfg) -> dict | None:
    if cfg.rope_scaling != "llama3":
        return None
    return {"rope_type": "llama3", "factor": cfg.rope_factor, "low_freq_factor": cfg.rope_low_freq_factor,
            "high_freq_factor": cfg.rope_high_freq_factor,
            "original_max_position_embeddings": cfg.rope_original_max_position_embeddings}


def _special_ids(cfg, tokenizer: Tokenizer) -> dict:
    """bos / eos (an id, or a list when there are several) / pad; a BPE of ours ends text with <|endoftext|>."""
    eos: list[int] = eos_ids(cfg)
    bos = cfg.bos_token_id if cfg.bos_token_id >= 0 else None
    if not eos and isinstance(tokenizer, BPETokenizer):
        end = tokenizer.hf.token_to_id("<|endoftext|>")
        eos = [end] if end is not None else []
        bos = end if bos is None else bos
    return {"bos": bos, "eos": eos[0] if len(eos) == 1 else (eos or None),
            "pad": cfg.pad_token_id if cfg.pad_token_id >= 0 else None}


def _token_names(special: dict, tokenizer: Tokenizer) -> dict:
    """tokenizer_config.json's bos_token / eos_token / pad_token, named by their text."""
    if not isinstance(tokenizer, BPETokenizer):
        return {}
    names = {}
    for kind, value in special.items():
        first = value[0] if isinstance(value, list) else value
        token = tokenizer.hf.id_to_token(first) if first is not None else None
        if token is not None:
            names[f"{kind}_token"] = token
    return names


def hf_tokenizer_json(tokenizer: Tokenizer) -> str:
    """An HF tokenizer.json that encodes text to the same ids as ours (char, byte and BPE alike)."""
    from tokenizers import Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    if isinstance(tokenizer, BPETokenizer):
        return tokenizer.hf.to_str()
    if isinstance(tokenizer, CharTokenizer):
        tok = HFTokenizer(models.WordLevel({ch: i for i, ch in enumerate(tokenizer.chars)}, unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        tok.decoder = decoders.Fuse()
        return _with_specials(tok, tokenizer)
    if isinstance(tokenizer, ByteTokenizer):
        alphabet = _bytes_to_unicode()
        tok = HFTokenizer(models.BPE({alphabet[b]: b for b in range(256)}, merges=[]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        tok.decoder = decoders.ByteLevel()
        return _with_specials(tok, tokenizer)
    raise DataError(f"no Hugging Face form for the '{tokenizer.kind}' tokenizer", "tokenizer")


def _with_specials(hf, tokenizer: Tokenizer) -> str:
    """The HF tokenizer with our special tokens added in order: they take the same ids after the vocabulary."""
    from tokenizers import AddedToken

    hf.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in tokenizer.specials])
    for i, token in enumerate(tokenizer.specials):
        if hf.token_to_id(token) != tokenizer.vocab_size - len(tokenizer.specials) + i:
            raise DataError(f"the special token {token!r} would take another id in the export", "tokenizer")
    return hf.to_str()


def chat_files(model, tokenizer: Tokenizer, special: dict) -> tuple[dict, dict, dict]:
    """For a model with a chat template: tokenizer_config.json's additions, generation_config.json's, and
    the files to write ({"chat_template.jinja": text}); three empty dicts for a model without one."""
    text, end_ids = export_template(tokenizer, model.config)
    if text is None:
        return {}, {}, {}
    chat = tokenizer.chat or {}
    names = {k: chat[k] for k in ("bos_token", "eos_token") if chat.get(k)}  # what the template was rendered with
    eos = special["eos"] if isinstance(special["eos"], list) else [special["eos"]] if special["eos"] is not None else []
    stops = list(dict.fromkeys([*end_ids, *eos]))
    generation = {"eos_token_id": stops[0] if len(stops) == 1 else stops} if stops else {}
    return {"chat_template": text, **names}, generation, {"chat_template.jinja": text}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map of the 256 byte values to printable characters (the ByteLevel alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


def export_hf(model, tokenizer: Tokenizer, out: str | Path, card: str) -> Path:
    """Write config.json, model.safetensors, tokenizer files, generation_config.json and README.md into out."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    special = _special_ids(model.config, tokenizer)
    chat_config, chat_generation, chat_extra = chat_files(model, tokenizer, special)
    files = {
        "config.json": json.dumps(hf_config(model, tokenizer), indent=2),
        "tokenizer.json": hf_tokenizer_json(tokenizer),
        "tokenizer_config.json": json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": model.config.block_size,
            **_token_names(special, tokenizer), "clean_up_tokenization_spaces": False, **chat_config}, indent=2),
        "generation_config.json": json.dumps({"bos_token_id": special["bos"], "eos_token_id": special["eos"],
                                              **({"pad_token_id": special["pad"]} if special["pad"] is not None
                                                 else {}), **chat_generation}, indent=2),
        "README.md": card,
        **chat_extra,
    }
    for name, text in files.items():
        _atomic_write(out / name, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    _atomic_write(out / "model.safetensors",
                  lambda tmp: save_file(hf_state(model), str(tmp), metadata={"format": "pt"}))
    return out


def _atomic_write(path: Path, write) -> None:
    """Write through a temp file renamed into place; world-readable like any exported model file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not write {path}: {err.strerror or err}", "export") from None
