"""A GPT-2 style decoder-only transformer, readable top to bottom.

Learned positions, pre-LayerNorm blocks, GELU MLP, tied input/output embeddings,
GPT-2 initialisation, attention through scaled_dot_product_attention, and a
key/value cache so generation costs grows linearly with the number of new tokens.
With `finetune = "lora"` the blocks' targeted layers carry low-rank adapters and only those train.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from autogpt_gui.config import ModelConfig
from autogpt_gui.engine.model.lora import freeze_base, make_linear

# The model's shape has one definition, shared with the run configuration and the checkpoint.
GPTConfig = ModelConfig


class KVCache:
    """Preallocated keys and values for every layer, filled left to right."""

    def __init__(self, cfg: GPTConfig, batch: int, device, dtype):
        shape = (batch, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.length = 0


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = make_linear(cfg, "attn.c_attn", cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = make_linear(cfg, "attn.c_proj", cfg.n_embd, cfg.n_embd)
        self.c_proj.residual_scale = True  # type: ignore[assignment]  # a marker read by _init_weights
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        # (B, T, 3C) -> three (B, nh, T, hs) tensors
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        if cache is None:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
            )
        else:
            start = cache.length
            cache.k[layer][:B, :, start : start + T] = k
            cache.v[layer][:B, :, start : start + T] = v
            k_all = cache.k[layer][:B, :, : start + T]
            v_all = cache.v[layer][:B, :, : start + T]
            # A prompt fills an empty cache causally; one new token may see everything before it.
            y = F.scaled_dot_product_attention(q, k_all, v_all, is_causal=(start == 0 and T > 1))
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = make_linear(cfg, "mlp.c_fc", cfg.n_embd, 4 * cfg.n_embd)
        self.gelu = nn.GELU(approximate="tanh" if cfg.activation == "gelu_tanh" else "none")
        self.c_proj = make_linear(cfg, "mlp.c_proj", 4 * cfg.n_embd, cfg.n_embd)
        self.c_proj.residual_scale = True  # type: ignore[assignment]  # a marker read by _init_weights
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.ln_eps, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.ln_eps, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class AutoGPTModel(nn.Module):
    """GPT-2 architecture. `AutoGPTModel()` is a small model over 256 byte tokens."""

    def __init__(self, config: GPTConfig | None = None):
        super().__init__()
        cfg = config or GPTConfig(vocab_size=256)
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"heads ({cfg.n_head}) must divide the width ({cfg.n_embd})")
        if cfg.vocab_size < 1:
            raise ValueError("vocab_size must be set (the tokenizer's vocabulary size)")
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions or cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.ln_eps, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        if cfg.finetune == "lora":  # low-rank adapters on a frozen base (engine/model/lora.py)
            freeze_base(self)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            std = 0.02
            if getattr(module, "residual_scale", False):
                # GPT-2: scale residual projections by 1/sqrt(2 * n_layer)
                std /= math.sqrt(2 * self.config.n_layer)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for every position, and the mean cross-entropy when targets are given."""
        T = idx.shape[1]
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds the context of {self.config.block_size}")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        x = self.ln_f(x)
        if cache is not None:
            cache.length += T
        if targets is None:
            return self.lm_head(x), None
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1))
        return logits, loss

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameters; position embeddings excluded by default, as GPT-2 reports them."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def flops_per_token(self, training: bool = True) -> float:
        """Matmul FLOPs per token (PaLM appendix B): 6N + 12 L T C for training, a third of it forward only."""
        cfg = self.config
        flops = 6 * self.num_params() + 12 * cfg.n_layer * cfg.block_size * cfg.n_embd
        return float(flops if training else flops / 3)

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        on_token=None,
    ) -> torch.Tensor:
        """Continue `idx` (B, T) by max_new_tokens sampled tokens, using a key/value cache.

        When the context fills, the cache is rebuilt from the last half context, so the cost per
        token stays bounded. `on_token(tensor of B ids)` is called for each new token.
        """
        was_training = self.training
        self.eval()
        dtype = next(self.parameters()).dtype
        cache = KVCache(self.config, idx.shape[0], idx.device, dtype)
        block = self.config.block_size
        out = idx
        logits, _ = self(out[:, -block:], cache=cache)
        for _ in range(max_new_tokens):
            next_id = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)
            out = torch.cat((out, next_id), dim=1)
            if on_token is not None:
                on_token(next_id[:, 0])
            if cache.length >= block:
                cache.length = 0
                logits, _ = self(out[:, -(block // 2 or 1) :], cache=cache)
            else:
                logits, _ = self(next_id, cache=cache)
        self.train(was_training)
        return out


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token id per row from (B, V) logits; temperature 0 is greedy."""
    logits = logits.float()
    if temperature <= 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # drop tokens once the mass before them already exceeds top_p (always keeps the first)
        drop = cumulative - sorted_logits.softmax(-1) > top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator)
