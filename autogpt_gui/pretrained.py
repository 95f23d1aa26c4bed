"""What a pretrained Hugging Face model is, read from its config.json: no torch, no download.

`config.validate` asks here so a bad `model.init` is marked at its field before anything starts;
`engine.model.hf` loads the weights and the tokenizer. Two block kinds take them: "gpt2" (GPT-2) and
"llama" (Llama, Mistral, Qwen2, Qwen3: one set of flags, LitGPT's way).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from autogpt_gui.errors import ConfigError
from autogpt_gui.settings import choices_of

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # gpt2, distilgpt2, openai-community/gpt2-medium
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu": "gelu"}
LLAMA_FAMILY = ("llama", "mistral", "qwen2", "qwen3")
MODEL_TYPES = ("gpt2", *LLAMA_FAMILY)
ARCHS = choices_of("model.arch")
ROPE_SCALINGS = ("", "llama3")


def is_hub_id(init: str) -> bool:
    return bool(HUB_ID.match(init)) and not Path(init).expanduser().exists()


def read_config(folder: Path) -> dict:
    """config.json of a model folder, or ConfigError at model.init saying what is wrong."""
    path = folder / "config.json"
    if not folder.is_dir():
        raise ConfigError([("model.init", f"{folder} is not a folder; choose a Hugging Face model folder "
                                          "(config.json + model.safetensors) or type a hub id such as gpt2")])
    if not path.is_file():
        raise ConfigError([("model.init", f"{folder} has no config.json, so it is not a Hugging Face model folder; "
                                          "choose the folder that holds config.json and model.safetensors")])
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError([("model.init", f"{path} is not readable JSON ({err})")]) from None
    if not isinstance(data, dict):
        raise ConfigError([("model.init", f"{path} does not describe a model")])
    return data


def shape_of(data: dict, where: str) -> dict:
    """The ModelConfig fields a config.json fixes; ConfigError for what our model cannot mirror."""
    kind = data.get("model_type")
    if kind not in MODEL_TYPES:
        raise ConfigError([("model.init", f"{where} is a '{kind}' model; only {', '.join(MODEL_TYPES[:-1])} and "
                                          f"{MODEL_TYPES[-1]} models can be imported")])
    try:
        return _gpt2_shape(data, where) if kind == "gpt2" else _llama_shape(data, where, kind)
    except (TypeError, ValueError, KeyError) as err:
        raise ConfigError([("model.init", f"{where}'s config.json has a missing or damaged setting ({err})")]) from None


def _gpt2_shape(data: dict, where: str) -> dict:
    act = data.get("activation_function", "gelu_new")
    problems = []
    if act not in ACTIVATIONS:
        problems.append(f"activation '{act}'")
    if data.get("scale_attn_by_inverse_layer_idx"):
        problems.append("attention scaled by layer index")
    n_embd = int(data.get("n_embd", 768))
    if data.get("n_inner") not in (None, 4 * n_embd):
        problems.append(f"an MLP width of {data['n_inner']}")
    if problems:
        raise ConfigError([("model.init", f"{where} uses {', '.join(problems)}, which this app's GPT-2 does not "
                                          "have; choose a standard GPT-2 model")])
    return {"n_layer": int(data.get("n_layer", 12)), "n_head": int(data.get("n_head", 12)), "n_embd": n_embd,
            "vocab_size": int(data.get("vocab_size", 50257)), "n_positions": int(data.get("n_positions", 1024)),
            "activation": ACTIVATIONS[act], "ln_eps": float(data.get("layer_norm_epsilon", 1e-5)), "bias": True,
            "tie_word_embeddings": bool(data.get("tie_word_embeddings", True))}


def _llama_shape(data: dict, where: str, kind: str) -> dict:
    problems = []
    if data.get("hidden_act", "silu") != "silu":
        problems.append(f"activation '{data['hidden_act']}'")
    rope = _rope(data)
    if rope.get("rope_type", "default") not in ("default", "llama3"):
        problems.append(f"rope scaling '{rope['rope_type']}'")
    if float(rope.get("partial_rotary_factor", 1.0)) != 1.0:
        problems.append("rotary embeddings on part of each head")
    window = data.get("sliding_window") if kind == "mistral" else None
    if kind != "mistral" and (data.get("use_sliding_window") or "sliding_attention" in (data.get("layer_types") or [])):
        problems.append("sliding windows on some layers only (use_sliding_window)")
    if problems:
        raise ConfigError([("model.init", f"{where} uses {', '.join(problems)}, which this app's {kind} does not "
                                          "have; choose a standard model of its family")])
    n_embd, n_head = int(data["hidden_size"]), int(data["num_attention_heads"])
    llama3 = rope.get("rope_type") == "llama3"
    return {"arch": "llama", "model_type": kind, "n_layer": int(data["num_hidden_layers"]), "n_head": n_head, "n_embd": n_embd,
            "n_kv_head": int(data.get("num_key_value_heads") or n_head),
            "head_dim": int(data.get("head_dim") or n_embd // n_head),
            "intermediate_size": int(data["intermediate_size"]), "vocab_size": int(data["vocab_size"]),
            "n_positions": int(data.get("max_position_embeddings", 2048)),
            "rms_norm_eps": float(data.get("rms_norm_eps", 1e-6)), "rope_theta": float(rope.get("rope_theta", 1e4)),
            "rope_scaling": "llama3" if llama3 else "",
            **({"rope_factor": float(rope["factor"]), "rope_low_freq_factor": float(rope["low_freq_factor"]),
                "rope_high_freq_factor": float(rope["high_freq_factor"]),
                "rope_original_max_position_embeddings": int(rope["original_max_position_embeddings"])}
               if llama3 else {}),
            "qk_norm": kind == "qwen3", "qkv_bias": kind == "qwen2",
            "attention_bias": kind in ("llama", "qwen3") and bool(data.get("attention_bias", False)),
            "bias": kind == "llama" and bool(data.get("mlp_bias", False)),
            "tie_word_embeddings": bool(data.get("tie_word_embeddings", False)),
            "sliding_window": int(window or 0)}


def _rope(data: dict) -> dict:
    """Rotary settings in transformers 5's form (rope_parameters) from either form (4's rope_theta + rope_scaling)."""
    rope = dict(data.get("rope_parameters") or data.get("rope_scaling") or {})
    if "type" in rope and "rope_type" not in rope:
        rope["rope_type"] = rope["type"]
    rope.setdefault("rope_theta", data.get("rope_theta", 10000.0))
    return rope


def architecture_problems(m) -> list[tuple[str, str]]:
    """(field, message) pairs for the block kind and the llama kind's flags of a ModelConfig."""
    if m.arch not in ARCHS:
        return [("model.arch", f"unknown block kind '{m.arch}'; choose {' or '.join(ARCHS)}")]
    p = []
    kinds = ("gpt2",) if m.arch == "gpt2" else LLAMA_FAMILY
    if m.model_type and m.model_type not in kinds:
        p.append(("model.model_type", f"'{m.model_type}' is not a {m.arch}-kind model; choose one of "
                                      f"{', '.join(kinds)} or leave it empty"))
    for name in ("n_kv_head", "head_dim", "intermediate_size", "sliding_window"):
        if getattr(m, name) < 0:
            p.append((f"model.{name}", "must be zero (the kind's default) or positive"))
    try:
        eos_ids(m)
    except ValueError:
        p.append(("model.eos_token_ids", "list token ids separated by commas, e.g. 2 or 128001,128009"))
    if m.arch == "gpt2":
        used = [n for n in ("n_kv_head", "head_dim", "intermediate_size", "sliding_window") if getattr(m, n)]
        used += [n for n in ("qk_norm", "attention_bias", "qkv_bias") if getattr(m, n)] + \
            (["rope_scaling"] if m.rope_scaling else [])
        if used:
            p.append((f"model.{used[0]}", f"{', '.join(used)}: only the llama block kind has this; set arch = llama"))
        return p
    if m.n_kv_head > 0 and m.n_head >= 1 and m.n_head % m.n_kv_head:
        p.append(("model.n_kv_head", f"key/value heads ({m.n_kv_head}) must divide the heads ({m.n_head})"))
    if m.head_dim % 2 or (not m.head_dim and m.n_head >= 1 and (m.n_embd // m.n_head) % 2):
        p.append(("model.head_dim", "rotary positions need an even head width; choose an even head_dim"))
    if not (math.isfinite(m.rms_norm_eps) and 0 < m.rms_norm_eps < 1):
        p.append(("model.rms_norm_eps", "must be a small positive number (1e-6 or 1e-5 is usual)"))
    if not (math.isfinite(m.rope_theta) and m.rope_theta > 1):
        p.append(("model.rope_theta", "must be above 1 (10000 is usual; Llama 3 uses 500000)"))
    if m.rope_scaling not in ROPE_SCALINGS:
        p.append(("model.rope_scaling", f"unknown rope scaling '{m.rope_scaling}'; choose none or llama3"))
    elif m.rope_scaling == "llama3" and not (m.rope_factor >= 1 and 0 < m.rope_low_freq_factor <
                                            m.rope_high_freq_factor and m.rope_original_max_position_embeddings > 0):
        p.append(("model.rope_scaling", "llama3 needs factor >= 1, 0 < low_freq_factor < high_freq_factor and "
                                        "a positive original_max_position_embeddings"))
    return p


def eos_ids(m) -> list[int]:
    """The end-of-sequence token ids of a ModelConfig (its comma-separated eos_token_ids)."""
    return [int(t) for t in str(m.eos_token_ids).split(",") if t.strip()]


def pretrained_problems(init: str, block_size: int) -> list[tuple[str, str]]:
    """(field, message) pairs for `model.init`; a hub id is only checked when it is fetched."""
    folder = Path(init).expanduser()
    if not folder.exists():
        if is_hub_id(init):
            return []
        return [("model.init", f"{init} does not exist; choose a model folder or type a hub id such as gpt2")]
    try:
        shape = shape_of(read_config(folder), folder.name)
    except ConfigError as err:
        return err.problems
    found = []
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        found.append(("model.init", f"{folder} has no weights ({' or '.join(WEIGHT_FILES)})"))
    if block_size > shape["n_positions"]:
        found.append(("model.block_size", f"context ({block_size}) is longer than the {shape['n_positions']} "
                                          f"positions {folder.name} was trained with; choose {shape['n_positions']} "
                                          "or less"))
    return found
