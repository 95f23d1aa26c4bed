"""One table per architecture between Hugging Face's tensor names and ours, both ways (LitGPT's way).

GPT-2 stores its block linears as Conv1D, (in, out), where our Linear is (out, in). The Llama family
(llama, mistral, qwen2, qwen3) stores Linear layouts under `model.layers.N.*`: only names change.
"""
from __future__ import annotations

import re

import torch

from autogpt_gui.config import BLOCK_LINEARS

CONV1D = BLOCK_LINEARS  # GPT-2 stores these as (in, out)
_GPT2_BLOCK = re.compile(r"^h\.(\d+)\.(.+)$")
_OUR_BLOCK = re.compile(r"^blocks\.(\d+)\.(\w+)\.(.+)$")
_HF_LLAMA_BLOCK = re.compile(r"^model\.layers\.(\d+)\.(\w+)\.(.+)$")
# our part of a block -> the Llama family's
LLAMA_PARTS = {"ln_1": "input_layernorm", "ln_2": "post_attention_layernorm", "attn": "self_attn", "mlp": "mlp"}
LLAMA_TOP = {"wte.weight": "model.embed_tokens.weight", "ln_f.weight": "model.norm.weight",
             "lm_head.weight": "lm_head.weight"}
IGNORED = (".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq")  # buffers old checkpoints saved


def from_hf(hf: dict[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """Hugging Face's tensors under our names and layouts, in float32; buffers of old checkpoints dropped."""
    out: dict[str, torch.Tensor] = {}
    for key, t in hf.items():
        if key.endswith(IGNORED):
            continue
        renamed = _ours_from_gpt2(key, t) if arch == "gpt2" else (_ours_from_llama(key), t)
        out[renamed[0]] = renamed[1].float().contiguous()
    return out


def _ours_from_gpt2(key: str, t: torch.Tensor) -> tuple[str, torch.Tensor]:
    key = key.removeprefix("transformer.")
    block = _GPT2_BLOCK.match(key)
    if not block:
        return key, t
    layer, rest = block.groups()
    if rest.rsplit(".", 1)[0] in CONV1D and rest.endswith(".weight"):
        t = t.t()
    return f"blocks.{layer}.{rest}", t


def _ours_from_llama(key: str) -> str:
    for ours, theirs in LLAMA_TOP.items():
        if key == theirs:
            return ours
    block = _HF_LLAMA_BLOCK.match(key)
    if block:
        layer, part, rest = block.groups()
        ours_part = next((o for o, h in LLAMA_PARTS.items() if h == part), part)
        return f"blocks.{layer}.{ours_part}.{rest}"
    return key  # unknown: reported as unexpected by the shape check


def to_hf(state: dict[str, torch.Tensor], cfg) -> dict[str, torch.Tensor]:
    """Our weights (adapters folded in) under the architecture's names and layouts, ready for safetensors."""
    out = _gpt2_names(state, cfg) if cfg.arch == "gpt2" else _llama_names(state, cfg)
    return {k: v.detach().contiguous().clone() for k, v in out.items()}


def _llama_names(state: dict[str, torch.Tensor], cfg) -> dict[str, torch.Tensor]:
    out = {}
    for key, t in state.items():
        if key == "lm_head.weight" and cfg.tie_word_embeddings:
            continue  # transformers ties it to the embedding itself
        block = _OUR_BLOCK.match(key)
        if block:
            layer, part, rest = block.groups()
            out[f"model.layers.{layer}.{LLAMA_PARTS[part]}.{rest}"] = t
        else:
            out[LLAMA_TOP[key]] = t
    return out


def _gpt2_names(ours: dict[str, torch.Tensor], cfg) -> dict[str, torch.Tensor]:
    """GPT-2's names and layouts; a model without biases gets zero ones (the same function)."""
    out: dict[str, torch.Tensor] = {}
    norms = [f"h.{i}.{n}" for i in range(cfg.n_layer) for n in ("ln_1", "ln_2")] + ["ln_f"]
    linears = [f"h.{i}.{n}" for i in range(cfg.n_layer) for n in CONV1D]
    for name in ("wte.weight", "wpe.weight"):
        out[f"transformer.{name}"] = ours[name]
    if not cfg.tie_word_embeddings:
        out["lm_head.weight"] = ours["lm_head.weight"]
    for name in norms + linears:
        src = name.replace("h.", "blocks.", 1) if name.startswith("h.") else name
        weight = ours[f"{src}.weight"]
        out[f"transformer.{name}.weight"] = weight.t() if name in linears else weight
        width = weight.shape[0]
        out[f"transformer.{name}.bias"] = ours.get(f"{src}.bias", torch.zeros(width, dtype=weight.dtype))
    return out
