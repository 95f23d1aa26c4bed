"""What a pretrained Hugging Face GPT-2 is, read from its config.json: no torch, no download.

`config.validate` asks here so a bad `model.init` is marked at its field before anything starts;
`engine.hf` loads the weights and the tokenizer.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from autogpt_gui.errors import ConfigError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # gpt2, distilgpt2, openai-community/gpt2-medium
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu": "gelu"}


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
    """The ModelConfig fields a GPT-2 config.json fixes; ConfigError for what our model cannot mirror."""
    kind = data.get("model_type")
    if kind != "gpt2":
        raise ConfigError([("model.init", f"{where} is a '{kind}' model; only the GPT-2 family (gpt2, distilgpt2, "
                                          "gpt2-medium, ...) can be imported")])
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
            "activation": ACTIVATIONS[act], "ln_eps": float(data.get("layer_norm_epsilon", 1e-5)), "bias": True}


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
