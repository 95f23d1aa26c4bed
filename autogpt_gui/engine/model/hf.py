"""The GPT-2 family in and out of the Hugging Face layout, so imported and native models share AutoGPTModel.

In: a folder (config.json + model.safetensors, or pytorch_model.bin loaded weights-only) or a hub id
fetched into the app's cache; GPT-2's Conv1D weights are stored (in, out) and become our Linear (out, in).
Out: a folder that `transformers` loads with no code of ours, with an HF tokenizer.json that encodes text
to our ids for every tokenizer we train, and a model card.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from autogpt_gui import paths
from autogpt_gui.config import BLOCK_LINEARS, RUN_CHOICES, ModelConfig
from autogpt_gui.engine.data.tokenizers import BPETokenizer, ByteTokenizer, CharTokenizer, Tokenizer
from autogpt_gui.engine.files import load_tensors_safely
from autogpt_gui.errors import CheckpointError, DataError
from autogpt_gui.pretrained import WEIGHT_FILES, is_hub_id, read_config, shape_of

CONV1D = BLOCK_LINEARS  # GPT-2 stores these as (in, out)
_BLOCK = re.compile(r"^h\.(\d+)\.(.+)$")


@dataclass
class Pretrained:
    """A GPT-2 ready for AutoGPTModel: its shape, its weights under our names, its tokenizer."""

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

        return Path(snapshot_download(init, cache_dir=str(paths.cache_dir().parent / "hub"),
                                      allow_patterns=["config.json", "*.safetensors", "tokenizer.json",
                                                      "vocab.json", "merges.txt", "generation_config.json"]))
    except Exception as err:  # noqa: BLE001 - offline, unknown id, gated model: all one message
        raise DataError(f"could not fetch '{init}' from the Hugging Face hub ({type(err).__name__}); on a computer "
                        f"with internet run `huggingface-cli download {init} --local-dir {init.split('/')[-1]}`, "
                        "copy that folder here and choose it", "model.init") from None


def load_pretrained(init: str, weights: bool = True) -> Pretrained:
    """Shape, tokenizer and (unless weights=False: load_weights later) weights of a GPT-2 folder or hub id."""
    folder = model_folder(init)
    shape = ModelConfig(preset="custom", init=init, **shape_of(read_config(folder), folder.name))
    pre = Pretrained(folder, shape, {}, _read_tokenizer(folder))
    if weights:
        pre.state = load_weights(pre)
    return pre


def weights_digest(folder: Path) -> str:
    """SHA-256 of a pretrained folder's weights file: how a LoRA checkpoint names the exact base it adapts."""
    path = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if path is None:
        raise CheckpointError(f"{folder} has no weights ({' or '.join(WEIGHT_FILES)})", "model.init")
    digest = hashlib.sha256()
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
    differ = [k for k in ("n_layer", "n_head", "n_embd", "vocab_size", "n_positions")
              if getattr(pre.shape, k) != getattr(shape, k)]
    if differ:
        raise CheckpointError(f"the base model {init} no longer has the shape these adapters were trained on "
                              f"({', '.join(differ)} differ)", "model.init")
    return load_weights(pre), {"init": init, "sha256": digest}


def load_weights(pre: Pretrained) -> dict[str, torch.Tensor]:
    """The folder's weights under our names, checked against its config.json."""
    return _our_names(_read_weights(pre.folder), pre.shape)


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        try:
            return load_file(str(folder / "model.safetensors"))
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
            raise CheckpointError(f"{folder / 'model.safetensors'} is not readable ({err})", "model.init") from None
    if (folder / "pytorch_model.bin").is_file():
        data = load_tensors_safely(folder / "pytorch_model.bin", "model.init")
        if isinstance(data, dict) and all(isinstance(v, torch.Tensor) for v in data.values()):
            return data
        raise CheckpointError(f"{folder / 'pytorch_model.bin'} holds no plain tensors", "model.init")
    raise CheckpointError(f"{folder} has no weights ({' or '.join(WEIGHT_FILES)})", "model.init")


def _our_names(hf: dict[str, torch.Tensor], shape: ModelConfig) -> dict[str, torch.Tensor]:
    """GPT-2's tensor names and layouts -> AutoGPTModel's; shapes are checked against config.json."""
    out: dict[str, torch.Tensor] = {}
    for key, t in hf.items():
        key = key.removeprefix("transformer.")
        if key.endswith((".attn.bias", ".attn.masked_bias")) or key == "lm_head.weight":
            continue  # causal-mask buffers of old checkpoints; the head is tied to wte
        block = _BLOCK.match(key)
        if block:
            layer, rest = block.groups()
            if rest.rsplit(".", 1)[0] in CONV1D and rest.endswith(".weight"):
                t = t.t()
            key = f"blocks.{layer}.{rest}"
        out[key] = t.float().contiguous()
    want = {"wte.weight": (shape.vocab_size, shape.n_embd), "wpe.weight": (shape.n_positions, shape.n_embd)}
    for key, size in want.items():
        if key not in out or tuple(out[key].shape) != size:
            got = tuple(out[key].shape) if key in out else "missing"
            raise CheckpointError(f"the weights do not match config.json: {key} is {got}, config.json says {size}",
                                  "model.init")
    out["lm_head.weight"] = out["wte.weight"]  # tied, as in GPT-2
    return out


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
    raise DataError(f"{folder} has no tokenizer (tokenizer.json, or vocab.json with merges.txt)", "model.init")


# ---- out: a folder transformers loads --------------------------------------------------------------
def hf_state(model) -> dict[str, torch.Tensor]:
    """Our weights under GPT-2's names and layouts; a model without biases gets zero ones (the same function)."""
    cfg = model.config
    ours = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    norms = [f"h.{i}.{n}" for i in range(cfg.n_layer) for n in ("ln_1", "ln_2")] + ["ln_f"]
    linears = [f"h.{i}.{n}" for i in range(cfg.n_layer) for n in CONV1D]
    for name in ("wte.weight", "wpe.weight"):
        out[f"transformer.{name}"] = ours[name]
    for name in norms + linears:
        src = name.replace("h.", "blocks.", 1) if name.startswith("h.") else name
        weight = ours[f"{src}.weight"]
        out[f"transformer.{name}.weight"] = weight.t() if name in linears else weight
        width = weight.shape[0]
        out[f"transformer.{name}.bias"] = ours.get(f"{src}.bias", torch.zeros(width, dtype=weight.dtype))
    return {k: v.detach().contiguous().clone() for k, v in out.items()}


def hf_config(model, tokenizer: Tokenizer) -> dict:
    cfg = model.config
    special = _special_ids(tokenizer)
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": cfg.vocab_size,
            "n_positions": cfg.n_positions or cfg.block_size, "n_embd": cfg.n_embd, "n_layer": cfg.n_layer,
            "n_head": cfg.n_head, "n_inner": None,
            "activation_function": "gelu_new" if cfg.activation == "gelu_tanh" else "gelu",
            "layer_norm_epsilon": cfg.ln_eps, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
            "initializer_range": 0.02, "scale_attn_weights": True, "tie_word_embeddings": True,
            "bos_token_id": special, "eos_token_id": special, "torch_dtype": "float32"}


def _special_ids(tokenizer: Tokenizer) -> int | None:
    if isinstance(tokenizer, BPETokenizer):
        return tokenizer.hf.token_to_id("<|endoftext|>")
    return None


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
        return tok.to_str()
    if isinstance(tokenizer, ByteTokenizer):
        alphabet = _bytes_to_unicode()
        tok = HFTokenizer(models.BPE({alphabet[b]: b for b in range(256)}, merges=[]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        tok.decoder = decoders.ByteLevel()
        return tok.to_str()
    raise DataError(f"no Hugging Face form for the '{tokenizer.kind}' tokenizer", "tokenizer")


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
    special = _special_ids(tokenizer)
    files = {
        "config.json": json.dumps(hf_config(model, tokenizer), indent=2),
        "tokenizer.json": hf_tokenizer_json(tokenizer),
        "tokenizer_config.json": json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": model.config.block_size,
            **({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"} if special is not None else {}),
            "clean_up_tokenization_spaces": False}, indent=2),
        "generation_config.json": json.dumps({"bos_token_id": special, "eos_token_id": special}, indent=2),
        "README.md": card,
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


def imported_shape(pre: Pretrained, m: ModelConfig) -> ModelConfig:
    """The pretrained model's shape with what a run may choose itself (context up to its positions, dropout,
    how it is fine-tuned)."""
    return replace(pre.shape, preset="custom", **{k: getattr(m, k) for k in RUN_CHOICES})
