"""Our model out as one GGUF file that llama.cpp (and Ollama, LM Studio, Jan) runs, written with the `gguf` package.

Names, layouts and metadata follow llama.cpp's (gguf/constants.py, convert_hf_to_gguf.py): a gpt2-kind model is
llama.cpp's `gpt2` (fused qkv, every bias: zero ones where we have none); a llama-kind model is `qwen3` (q/k norm),
`qwen2` (q/k/v biases) or `llama` (Llama and Mistral). llama.cpp's `llama` graph rotates interleaved pairs where
transformers (and we) rotate halves, so its q and k rows are permuted as its converter does; qwen2 and qwen3 rotate
halves there too and go unpermuted. Norms and biases stay float32; q8_0 needs rows that are a multiple of 32
values (its block), and a tensor whose rows are not is written f16, as llama.cpp's converter does, and reported.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from autogpt_gui.engine.model.gguf_vocab import gguf_vocab, special_ids
from autogpt_gui.engine.model.hf_export import hf_model_type
from autogpt_gui.engine.model.lora import merged_state
from autogpt_gui.errors import CheckpointError
from autogpt_gui.estimates import head_size, kv_heads, mlp_width

QUANTS = ("f32", "f16", "bf16", "q8_0")
Q8_BLOCK = 32
_GPT2_PARTS = {"ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "ln_2": "ffn_norm",
               "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"}
_LLAMA_PARTS = {"ln_1": "attn_norm", "ln_2": "ffn_norm", "attn.q_proj": "attn_q", "attn.k_proj": "attn_k",
                "attn.v_proj": "attn_v", "attn.o_proj": "attn_output", "attn.q_norm": "attn_q_norm",
                "attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                "mlp.down_proj": "ffn_down"}
_TOP = {"wte.weight": "token_embd.weight", "wpe.weight": "position_embd.weight", "ln_f.weight": "output_norm.weight",
        "ln_f.bias": "output_norm.bias", "lm_head.weight": "output.weight"}


@dataclass
class GGUFTensor:
    """One tensor as written: its GGUF name, values (numpy, our Linear layout: (out, in)) and type."""

    name: str
    data: np.ndarray
    qtype: str  # "f32" | "f16" | "bf16" | "q8_0"


@dataclass
class GGUFPlan:
    """Everything one file holds, decided before a byte is written."""

    arch: str
    tensors: list[GGUFTensor]
    kept: list[str] = field(default_factory=list)  # 2-D tensors left at f16 because q8_0 cannot hold their rows


def gguf_arch(cfg) -> str:
    """llama.cpp's architecture for our model: gpt2, qwen3, qwen2 or llama; one it would run differently is refused."""
    if cfg.arch == "gpt2":
        return "gpt2"
    if cfg.sliding_window and cfg.sliding_window < (cfg.n_positions or cfg.block_size):
        raise CheckpointError(f"this model attends within a sliding window of {cfg.sliding_window} tokens, which "
                              "llama.cpp's llama graph does not do; it would answer differently, so it is not "
                              "exported to GGUF", "model.sliding_window")
    kind = hf_model_type(cfg)
    return kind if kind in ("qwen2", "qwen3") else "llama"


def permute_rows(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Rows of q or k (weight or bias) from rotate-half order to llama.cpp's interleaved pairs (LlamaModel.permute)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_state(model) -> tuple[str, dict[str, torch.Tensor]]:
    """The architecture and our weights (adapters folded in) under llama.cpp's names and layouts."""
    cfg = model.config
    arch = gguf_arch(cfg)
    ours = {k: v.detach().float() for k, v in merged_state(model).items()}
    if cfg.tie_word_embeddings:
        ours.pop("lm_head.weight", None)  # llama.cpp uses token_embd when there is no output tensor
    out: dict[str, torch.Tensor] = {}
    parts = _GPT2_PARTS if arch == "gpt2" else _LLAMA_PARTS
    for key, t in ours.items():
        if key in _TOP:
            out[_TOP[key]] = t
            continue
        _, layer, rest = key.split(".", 2)
        part, kind = rest.rsplit(".", 1)
        if arch == "llama" and part in ("attn.q_proj", "attn.k_proj"):
            t = permute_rows(t, cfg.n_head if part == "attn.q_proj" else kv_heads(cfg))
        out[f"blk.{layer}.{parts[part]}.{kind}"] = t
    if arch == "gpt2":  # llama.cpp's gpt2 graph expects every bias; ours are zero where the model has none
        for name, t in list(out.items()):
            if name.endswith(".weight") and name.startswith(("blk.", "output_norm")):
                out.setdefault(name[: -len("weight")] + "bias", torch.zeros(t.shape[0]))
    if cfg.arch == "llama" and cfg.rope_scaling == "llama3":
        out["rope_freqs.weight"] = llama3_rope_factors(cfg)
    return arch, out


def llama3_rope_factors(cfg) -> torch.Tensor:
    """Llama 3.1's per-frequency divisors, which llama.cpp reads from rope_freqs.weight (as its converter writes)."""
    dim = head_size(cfg)
    freqs = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    old, low, high, factor = (cfg.rope_original_max_position_embeddings, cfg.rope_low_freq_factor,
                              cfg.rope_high_freq_factor, cfg.rope_factor)
    factors = []
    for freq in freqs.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            factors.append(1.0)
        elif wavelen > old / low:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(factors, dtype=torch.float32)


def gguf_plan(model, quant: str = "f32") -> GGUFPlan:
    """Each tensor with the type it is written in: norms, biases and rope factors float32; matrices `quant`."""
    if quant not in QUANTS:
        raise CheckpointError(f"unknown GGUF type '{quant}'; choose {', '.join(QUANTS)}", "--quant")
    arch, state = gguf_state(model)
    plan = GGUFPlan(arch, [])
    for name, t in state.items():
        qtype = quant if t.ndim == 2 else "f32"
        if qtype == "q8_0" and t.shape[-1] % Q8_BLOCK:
            qtype = "f16"
            plan.kept.append(name)
        plan.tensors.append(GGUFTensor(name, t.contiguous().numpy(), qtype))
    return plan


def _file_type(quant: str) -> int:
    import gguf

    return {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
            "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[quant]


def _add_shape(writer, cfg, arch: str) -> None:
    """The architecture's hyperparameters under llama.cpp's keys ({arch}.context_length, ...)."""
    writer.add_context_length(cfg.n_positions or cfg.block_size)
    writer.add_embedding_length(cfg.n_embd)
    writer.add_block_count(cfg.n_layer)
    writer.add_feed_forward_length(mlp_width(cfg))
    writer.add_head_count(cfg.n_head)
    writer.add_vocab_size(cfg.vocab_size)
    if arch == "gpt2":
        writer.add_head_count_kv(cfg.n_head)
        writer.add_layer_norm_eps(cfg.ln_eps)
        return
    writer.add_head_count_kv(kv_heads(cfg))
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(cfg.rope_theta)
    writer.add_rope_dimension_count(head_size(cfg))
    writer.add_key_length(head_size(cfg))
    writer.add_value_length(head_size(cfg))


def _add_vocab(writer, cfg, tokenizer, chat_template: str | None, eot_ids: list[int]) -> None:
    vocab = gguf_vocab(tokenizer)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    special = special_ids(cfg, tokenizer)
    for kind, add in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id),
                      ("pad", writer.add_pad_token_id)):
        if kind in special:
            add(special[kind])
    writer.add_add_bos_token(False)  # our models are trained on text without one
    if chat_template:
        writer.add_chat_template(chat_template)
    if eot_ids:
        writer.add_eot_token_id(eot_ids[0])


def write_gguf(model, tokenizer, path: str | Path, quant: str = "f32", name: str = "",
               chat_template: str | None = None, eot_ids: list[int] | None = None) -> GGUFPlan:
    """Write the model into path as one GGUF file, through a temporary file renamed into place."""
    import gguf

    path = Path(path)
    plan = gguf_plan(model, quant)
    cfg = model.config
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp, plan.arch)
    try:
        writer.add_name(name or "autogpt-gui model")
        writer.add_file_type(_file_type(quant))
        _add_shape(writer, cfg, plan.arch)
        _add_vocab(writer, cfg, tokenizer, chat_template, list(eot_ids or []))
        for t in plan.tensors:
            qtype = getattr(gguf.GGMLQuantizationType, t.qtype.upper())
            data = gguf.quants.quantize(t.data, qtype)
            writer.add_tensor(t.name, data, raw_dtype=qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return plan
