"""A decoder-only transformer of one of two block kinds, readable top to bottom.

"gpt2": learned positions, pre-LayerNorm blocks, GELU MLP, tied embeddings (GPT-2). "llama": rotary positions,
RMSNorm, SwiGLU, grouped-query attention, tied or untied embeddings (Llama, Mistral, Qwen2, Qwen3); the blocks
are in blocks.py and attention.py. GPT-2 initialisation for both, attention through scaled_dot_product_attention,
and a key/value cache so generation costs grow linearly with the number of new tokens.
With `finetune = "lora"` the blocks' targeted layers carry low-rank adapters and only those train.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.nn import functional as F

from autogpt_gui.config import ModelConfig, lora_layers
from autogpt_gui.engine.model.attention import CausalSelfAttention, KVCache
from autogpt_gui.engine.model.blocks import MLP, Block, SwiGLU, make_norm
from autogpt_gui.engine.model.lora import freeze_base
from autogpt_gui.engine.model.rope import rope_tables
from autogpt_gui.errors import ConfigError
from autogpt_gui.estimates import head_size

# The model's shape has one definition, shared with the run configuration and the checkpoint.
GPTConfig = ModelConfig
__all__ = ["AutoGPTModel", "Block", "CausalSelfAttention", "GPTConfig", "KVCache", "MLP", "SwiGLU", "sample_next"]


class AutoGPTModel(nn.Module):
    """The model, GPT-2's or the llama kind (config.arch). `AutoGPTModel()` is a small GPT-2 over 256 byte tokens."""

    def __init__(self, config: GPTConfig | None = None):
        super().__init__()
        cfg = config or GPTConfig(vocab_size=256)
        if cfg.n_embd % cfg.n_head and not (cfg.arch == "llama" and cfg.head_dim):
            raise ValueError(f"heads ({cfg.n_head}) must divide the width ({cfg.n_embd})")
        if cfg.vocab_size < 1:
            raise ValueError("vocab_size must be set (the tokenizer's vocabulary size)")
        if cfg.finetune == "lora" and not lora_layers(cfg.lora_targets, cfg.arch):
            raise ConfigError([("model.lora_targets", f"'{cfg.lora_targets}' names no layer of a {cfg.arch} block")])
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        if cfg.arch != "llama":  # the llama kind rotates queries and keys instead (rope.py)
            self.wpe = nn.Embedding(cfg.n_positions or cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = make_norm(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
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
        rope = None
        if self.config.arch == "llama":
            x = self.drop(self.wte(idx))
            rope = rope_tables(self.config, start, T, idx.device)
        else:
            x = self.drop(self.wte(idx) + self.wpe(torch.arange(start, start + T, device=idx.device)))
        for i, block in enumerate(self.blocks):
            x = block(x, rope, cache, i)
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
        return n - self.wpe.weight.numel() if non_embedding and hasattr(self, "wpe") else n

    def flops_per_token(self, training: bool = True) -> float:
        """Matmul FLOPs per token (PaLM appendix B): 6N + 12 L T C for training, a third of it forward only."""
        cfg = self.config
        attn_width = cfg.n_head * head_size(cfg)
        flops = 6 * self.num_params() + 12 * cfg.n_layer * cfg.block_size * attn_width
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
        eos: Sequence[int] = (),
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Continue `idx` (B, T) by max_new_tokens sampled tokens, using a key/value cache.

        When the context fills, the cache is rebuilt from the last half context, so the cost per
        token stays bounded. `on_token(tensor of B ids)` is called for each new token. Generation ends
        early once every row has sampled one of `eos` (kept, as transformers keeps it).
        """
        if not use_cache:
            return self._generate_uncached(idx, max_new_tokens, temperature, top_k, top_p, generator, on_token, eos)
        was_training = self.training
        self.eval()
        dtype = next(self.parameters()).dtype
        # a model of a long context (Qwen3: 40,960 positions) gets a cache only as long as this generation needs
        cache = KVCache(self.config, idx.shape[0], idx.device, dtype, idx.shape[1] + max_new_tokens)
        block = self.config.block_size
        out = idx
        logits, _ = self(out[:, -block:], cache=cache)
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            next_id = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)
            out = torch.cat((out, next_id), dim=1)
            if on_token is not None:
                on_token(next_id[:, 0])
            if eos:
                done |= _is_eos(next_id[:, 0], eos)
                if done.all():
                    break
            if cache.length >= block:
                cache.length = 0
                logits, _ = self(out[:, -(block // 2 or 1) :], cache=cache)
            else:
                logits, _ = self(next_id, cache=cache)
        self.train(was_training)
        return out

    def _generate_uncached(self, idx, max_new_tokens, temperature, top_k, top_p, generator, on_token, eos):
        """generate() recomputing the whole window for every token: the reference the cache must agree with."""
        was_training = self.training
        self.eval()
        out = idx
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            logits, _ = self(out[:, -self.config.block_size :])
            next_id = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)
            out = torch.cat((out, next_id), dim=1)
            if on_token is not None:
                on_token(next_id[:, 0])
            if eos:
                done |= _is_eos(next_id[:, 0], eos)
                if done.all():
                    break
        self.train(was_training)
        return out


def _is_eos(ids: torch.Tensor, eos: Sequence[int]) -> torch.Tensor:
    return torch.isin(ids, torch.tensor(list(eos), dtype=ids.dtype, device=ids.device))


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
