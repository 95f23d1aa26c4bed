"""Arithmetic about a configuration, without building anything: parameters, memory, tokens."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from autogpt_gui.config import RunConfig, lora_layers

TASK_VOCAB = 14  # digits, '+', '=', newline: the char vocabulary of the addition task


@dataclass
class Estimate:
    params: int  # all parameters (tied embeddings counted once; LoRA adapters included)
    memory_bytes: int  # weights, gradients and AdamW moments of what trains, activations of one micro-batch
    tokens_per_step: int
    vocab_size: int
    trainable: int = 0  # parameters the optimizer updates: all of them, or only LoRA's adapters


def guess_vocab(cfg: RunConfig, known: int | None = None) -> int:
    if known:
        return known
    if cfg.model.vocab_size:
        return cfg.model.vocab_size
    d = cfg.data
    if d.tokenizer == "byte":
        return 256
    if d.tokenizer == "bpe":
        return d.bpe_vocab_size
    return TASK_VOCAB if d.source == "task:addition" else 100


def estimate(cfg: RunConfig, vocab_size: int | None = None) -> Estimate:
    """Parameter count and training-memory estimate (fp32 weights, AdamW), tokens per step."""
    m, t = cfg.model, cfg.train
    v = guess_vocab(cfg, vocab_size)
    c, L, T = max(1, m.n_embd), max(0, m.n_layer), max(1, m.block_size)
    if m.arch == "llama":
        params = L * llama_layer_params(m) + c + v * c * (1 if m.tie_word_embeddings else 2)
    else:
        per_layer = 12 * c * c + (13 * c if m.bias else 8 * c)
        params = L * per_layer + 2 * c + v * c + max(T, m.n_positions) * c
    trainable = params
    if m.finetune == "lora":
        trainable = L * lora_per_layer(m.lora_targets, max(1, m.lora_rank), c, m)
        params += trainable
    b = max(1, t.batch_size)
    # activations kept for backward: ~34 floats per (token, width) per layer plus attention
    # scores when the fused kernel is unavailable, plus logits and their gradient
    activations = b * T * (L * (34 * c + 5 * m.n_head * T) + 2 * v) * 4
    memory = params * 4 + trainable * 4 * 3 + activations  # weights; gradients and two AdamW moments of what trains
    return Estimate(params, memory, b * T * max(1, t.grad_accum), v, trainable)


def head_size(m) -> int:
    """The width of one attention head: head_dim when set (Qwen3), else the width shared among the heads."""
    return m.head_dim or m.n_embd // max(1, m.n_head)


def kv_heads(m) -> int:
    """Key/value heads: fewer than the query heads under grouped-query attention."""
    return m.n_kv_head or m.n_head


def mlp_width(m) -> int:
    """The MLP's hidden width: 4x for GPT-2; for SwiGLU intermediate_size, else 8/3x rounded up to 64 (LLaMA)."""
    if m.arch != "llama":
        return 4 * m.n_embd
    return m.intermediate_size or -(-8 * m.n_embd // 3 // 64) * 64


def llama_linears(m) -> dict[str, tuple[int, int]]:
    """(inputs, outputs) of each linear layer of a llama-kind block, under our names."""
    c, q, kv, i = m.n_embd, m.n_head * head_size(m), kv_heads(m) * head_size(m), mlp_width(m)
    return {"attn.q_proj": (c, q), "attn.k_proj": (c, kv), "attn.v_proj": (c, kv), "attn.o_proj": (q, c),
            "mlp.gate_proj": (c, i), "mlp.up_proj": (c, i), "mlp.down_proj": (i, c)}


def llama_layer_params(m) -> int:
    """Parameters of one llama-kind block: its linears, their biases, two RMSNorms and the q/k norms."""
    sizes = llama_linears(m)
    n = sum(a * b for a, b in sizes.values()) + 2 * m.n_embd
    if m.attention_bias or m.qkv_bias:
        n += sum(sizes[k][1] for k in ("attn.q_proj", "attn.k_proj", "attn.v_proj"))
    if m.attention_bias:
        n += m.n_embd
    if m.bias:
        n += 2 * mlp_width(m) + m.n_embd
    return n + (2 * head_size(m) if m.qk_norm else 0)


def lora_per_layer(targets: str, rank: int, c: int, m=None) -> int:
    """Adapter parameters in one block: rank * (inputs + outputs) of each targeted layer (m: a llama-kind shape)."""
    if m is not None and m.arch == "llama":
        sizes = llama_linears(m)
        return sum(rank * sum(sizes[k]) for k in lora_layers(targets, "llama"))
    sizes = {"attn.c_attn": (c, 3 * c), "attn.c_proj": (c, c), "mlp.c_fc": (c, 4 * c), "mlp.c_proj": (4 * c, c)}
    return sum(rank * (sizes[k][0] + sizes[k][1]) for k in lora_layers(targets))


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_count(n: float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))


def system_memory() -> int | None:
    """Bytes of memory this computer can give a new process now (available, else physical); None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if sys.platform == "win32":
        import ctypes

        class _Status(ctypes.Structure):
            _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                        ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                        ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                        ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                        ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]

        status = _Status(dwLength=ctypes.sizeof(_Status))
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return int(status.ullAvailPhys)
        return None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def memory_problems(cfg: RunConfig, limit: int | None, where: str, vocab_size: int | None = None) -> list[tuple[str, str]]:
    """A (field, message) pair when training cfg needs more memory than `limit` bytes of `where`."""
    if not limit:
        return []
    est = estimate(cfg, vocab_size)
    if est.memory_bytes <= limit:
        return []
    weights = est.params * 4 + est.trainable * 4 * 3  # weights, gradients and two AdamW moments in fp32
    field = "model.n_layer" if weights > limit else "train.batch_size"
    fix = "use a smaller model (fewer layers or a narrower width)" if weights > limit else \
        "lower the batch size or the context, or use gradient accumulation"
    if weights > limit and cfg.model.init:  # a pretrained base's shape is not ours to shrink
        field = "model.init"
        fix = "choose a smaller base model" + (", or fine-tune with LoRA" if cfg.model.finetune == "full" else "")
    return [(field, f"training needs about {human_bytes(est.memory_bytes)} but {where} has "
                    f"{human_bytes(limit)}: {fix}")]
