"""Hugging Face models in (gpt2, llama, mistral, qwen2, qwen3), so imported and native models share AutoGPTModel.

In: a folder (config.json + model.safetensors, its shards, or pytorch_model.bin loaded weights-only) or a hub
id fetched into the app's cache; names and layouts change by the tables of hf_names.py, and every tensor is
checked against config.json. The tokenizer is the folder's tokenizer.json with its special tokens.
Out (hf_export.py): a folder that `transformers` loads with no code of ours, in the model's own model_type.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from autogpt_gui import paths
from autogpt_gui.config import RUN_CHOICES, ModelConfig, RunConfig
from autogpt_gui.engine.data.tokenizers import BPETokenizer, Tokenizer
from autogpt_gui.engine.files import load_tensors_safely
from autogpt_gui.engine.model.gpt import AutoGPTModel
from autogpt_gui.engine.model.hf_export import export_hf, hf_config, hf_state, hf_tokenizer_json
from autogpt_gui.engine.model.hf_names import from_hf
from autogpt_gui.errors import CheckpointError, DataError
from autogpt_gui.estimates import estimate, human_bytes, system_memory
from autogpt_gui.pretrained import WEIGHT_FILES, is_hub_id, read_config, shape_of

__all__ = ["Pretrained", "export_hf", "hf_config", "hf_state", "hf_tokenizer_json", "imported_shape",
           "load_pretrained", "load_weights", "lora_base", "model_folder", "weights_digest"]
INDEX = "model.safetensors.index.json"
HUB_FILES = ["config.json", "*.safetensors", INDEX, "tokenizer.json", "tokenizer_config.json",
             "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt", "tokenizer.model"]


@dataclass
class Pretrained:
    """A pretrained model ready for AutoGPTModel: its shape, its weights under our names, its tokenizer."""

    folder: Path
    shape: ModelConfig
    state: dict[str, torch.Tensor]
    tokenizer: Tokenizer


def model_folder(init: str) -> Path:
    """A local folder as given, or a hub id downloaded into the app's cache (a clear message offline)."""
    folder = Path(init).expanduser()
    if folder.exists() or not is_hub_id(init):
        return folder
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(init, cache_dir=str(paths.cache_dir().parent / "hub"), allow_patterns=HUB_FILES))
    except Exception as err:  # noqa: BLE001 - offline, unknown id, gated model: all one message
        raise DataError(f"could not fetch '{init}' from the Hugging Face hub ({type(err).__name__}); on a computer "
                        f"with internet run `huggingface-cli download {init} --local-dir {init.split('/')[-1]}`, "
                        "copy that folder here and choose it", "model.init") from None


def load_pretrained(init: str, weights: bool = True, memory_limit: int | None = None) -> Pretrained:
    """Shape, tokenizer and (unless weights=False: load_weights later) weights of a model folder or hub id.

    Weights that cannot fit in memory (memory_limit, else what this computer has free) are refused unread.
    """
    folder = model_folder(init)
    shape = ModelConfig(preset="custom", init=init, **shape_of(read_config(folder), folder.name))
    tokenizer = _read_tokenizer(folder)
    shape = replace(shape, **special_tokens(folder, tokenizer))
    pre = Pretrained(folder, shape, {}, tokenizer)
    if weights:
        need = estimate(RunConfig(model=shape), shape.vocab_size).params * 4
        limit = memory_limit if memory_limit is not None else system_memory()
        if limit and need > limit:
            raise CheckpointError(f"{folder.name} needs about {human_bytes(need)} of memory for its weights but "
                                  f"this computer has {human_bytes(limit)} available", "model.init")
        pre.state = load_weights(pre)
    return pre


def weight_files(folder: Path) -> list[Path]:
    """The files holding a folder's weights: one, or every shard its safetensors index names."""
    if (folder / INDEX).is_file():
        try:
            shards = sorted(set(json.loads((folder / INDEX).read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{folder / INDEX} is not a readable index ({err})", "model.init") from None
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise CheckpointError(f"{folder.name} misses the shard {missing[0]} that {INDEX} names "
                                  f"({len(missing)} of {len(shards)} missing); download the model again", "model.init")
        return [folder / INDEX, *(folder / s for s in shards)]
    path = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if path is None:
        raise CheckpointError(f"{folder} has no weights ({' or '.join(WEIGHT_FILES)})", "model.init")
    return [path]


def weights_digest(folder: Path) -> str:
    """SHA-256 of a pretrained folder's weights files: how a LoRA checkpoint names the exact base it adapts."""
    digest = hashlib.sha256()
    for path in weight_files(folder):
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def lora_base(init: str, shape: ModelConfig, saved: dict | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """The frozen base under LoRA adapters: its weights and identity {"init", "sha256"}.

    `saved` is the identity a checkpoint recorded: a base whose weights or shape changed since is refused,
    because the adapters were learned against the old one and would silently mean something else.
    """
    pre = load_pretrained(init, weights=False)
    digest = weights_digest(pre.folder)
    if saved is not None and saved.get("sha256") != digest:
        raise CheckpointError(f"the base model {init} changed since these adapters were trained (its weights' "
                              f"SHA-256 was {str(saved.get('sha256'))[:12]}..., now {digest[:12]}...); restore "
                              "that model, or start a new run from this one", "model.init")
    differ = [k for k in ("arch", "n_layer", "n_head", "n_embd", "vocab_size", "n_positions", "n_kv_head",
                          "head_dim", "intermediate_size") if getattr(pre.shape, k) != getattr(shape, k)]
    if differ:
        raise CheckpointError(f"the base model {init} no longer has the shape these adapters were trained on "
                              f"({', '.join(differ)} differ)", "model.init")
    return load_weights(pre), {"init": init, "sha256": digest}


def load_weights(pre: Pretrained) -> dict[str, torch.Tensor]:
    """The folder's weights under our names, checked against its config.json."""
    return _checked(from_hf(_read_weights(pre.folder), pre.shape.arch), pre.shape)


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    files = weight_files(folder)
    if files[0].name == "pytorch_model.bin":
        data = load_tensors_safely(files[0], "model.init")
        if isinstance(data, dict) and all(isinstance(v, torch.Tensor) for v in data.values()):
            return data
        raise CheckpointError(f"{files[0]} holds no plain tensors", "model.init")
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for path in files[1:] if files[0].name == INDEX else files:
        try:
            state.update(load_file(str(path)))
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
            raise CheckpointError(f"{path} is not readable ({err})", "model.init") from None
    return state


def _checked(ours: dict[str, torch.Tensor], shape: ModelConfig) -> dict[str, torch.Tensor]:
    """Every tensor the shape needs, of its size, and no other; a tied head is the embedding."""
    with torch.device("meta"):  # sizes only: nothing of the claimed size is allocated
        model = AutoGPTModel(replace(shape, finetune="full"))
    want = {k: tuple(p.shape) for k, p in model.named_parameters(remove_duplicate=False)}
    if shape.tie_word_embeddings:
        ours.pop("lm_head.weight", None)  # some tied checkpoints store the head as well
        want.pop("lm_head.weight")
    for key, size in want.items():
        got = tuple(ours[key].shape) if key in ours else "missing"
        if got != size:
            raise CheckpointError(f"the weights do not match config.json: {key} is {got}, config.json says {size}",
                                  "model.init")
    extra = sorted(k for k in ours if k not in want)
    if extra:
        raise CheckpointError(f"the weights do not match config.json: they hold {extra[0]} (and {len(extra) - 1} "
                              f"more) that a {shape.model_type or shape.arch} model of this shape does not have",
                              "model.init")
    if shape.tie_word_embeddings:
        ours["lm_head.weight"] = ours["wte.weight"]
    return ours


def _read_tokenizer(folder: Path) -> Tokenizer:
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    if (folder / "tokenizer.json").is_file():
        return BPETokenizer(HFTokenizer.from_file(str(folder / "tokenizer.json")))
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        tok = HFTokenizer(models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt")))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        return BPETokenizer(tok)
    if (folder / "tokenizer.model").is_file():
        raise DataError(f"{folder.name} has only a sentencepiece tokenizer.model, which this app does not read; "
                        "save its tokenizer.json with transformers (AutoTokenizer.from_pretrained(folder)"
                        ".save_pretrained(folder)) and choose the folder again", "model.init")
    raise DataError(f"{folder} has no tokenizer (tokenizer.json, or vocab.json with merges.txt)", "model.init")


def special_tokens(folder: Path, tokenizer: Tokenizer) -> dict:
    """bos, eos and pad ids from config.json, tokenizer_config.json (by name) and generation_config.json's
    eos list, as ModelConfig fields."""
    found: dict[str, list[int]] = {"bos": [], "eos": [], "pad": []}
    for name in ("config.json", "generation_config.json", "tokenizer_config.json"):
        data = _json(folder / name)
        for kind in found:
            value = data.get(f"{kind}_token_id") if name != "tokenizer_config.json" else _token_id(
                tokenizer, data.get(f"{kind}_token"))
            ids = value if isinstance(value, list) else [value]
            found[kind] += [int(i) for i in ids if isinstance(i, int) and i >= 0 and int(i) not in found[kind]]
    return {"bos_token_id": (found["bos"] or [-1])[0], "pad_token_id": (found["pad"] or [-1])[0],
            "eos_token_ids": ",".join(map(str, found["eos"]))}


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _token_id(tokenizer: Tokenizer, token) -> int | None:
    if isinstance(token, dict):  # {"content": "<|im_end|>", ...}
        token = token.get("content")
    if not isinstance(token, str) or not isinstance(tokenizer, BPETokenizer):
        return None
    return tokenizer.hf.token_to_id(token)


def imported_shape(pre: Pretrained, m: ModelConfig) -> ModelConfig:
    """The pretrained model's shape with what a run may choose itself (context up to its positions, dropout,
    how it is fine-tuned)."""
    return replace(pre.shape, preset="custom", **{k: getattr(m, k) for k in RUN_CHOICES})
