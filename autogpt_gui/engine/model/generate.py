"""Text out of a model: a prompt encoded, tokens sampled through the KV cache, text streamed as it forms."""
from __future__ import annotations

from collections.abc import Callable

import torch

from autogpt_gui.engine.data.tokenizers import Tokenizer
from autogpt_gui.pretrained import eos_ids


def encode_prompt(tokenizer: Tokenizer, prompt: str) -> list[int]:
    ids = tokenizer.encode(prompt, strict=False) if prompt else []
    return ids or tokenizer.encode("\n", strict=False) or [0]


def generate_text(model, tokenizer: Tokenizer, prompt: str, max_new_tokens: int, temperature: float = 0.8,
                  top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                  on_text: Callable[[str], None] | None = None) -> str:
    """The continuation of prompt (without the prompt), ended early by the model's end-of-sequence token (not
    shown); on_text receives each new piece of text."""
    device = next(model.parameters()).device
    idx = torch.tensor([encode_prompt(tokenizer, prompt)], device=device)
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    new_ids: list[int] = []
    shown = [""]
    eos = eos_ids(model.config)

    def on_token(t):
        if int(t[0]) in eos:
            return
        new_ids.append(int(t[0]))
        if on_text is not None:
            text = tokenizer.decode(new_ids)
            if not text.endswith("\ufffd"):  # wait for a whole UTF-8 character
                on_text(text[len(shown[0]):])
                shown[0] = text

    model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                   generator=gen, on_token=on_token, eos=eos)
    return tokenizer.decode(new_ids)
