"""A reply from a model, through its chat template: the conversation so far, the assistant's opening, then
tokens until the end of the turn."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from autogpt_gui.engine.data.chat import Conversation, Turn
from autogpt_gui.engine.data.chat_template import ChatTemplate, model_template, model_tokens, template_text
from autogpt_gui.engine.data.tokenizers import Tokenizer
from autogpt_gui.pretrained import eos_ids


def chat_reply(model, tokenizer: Tokenizer, template: ChatTemplate, turns: list[Turn], max_new_tokens: int = 200,
               temperature: float = 0.0, seed: int = 0, on_text: Callable[[str], None] | None = None) -> str:
    """The assistant's next reply to turns (greedy at temperature 0), stopped at its end-of-turn token or the
    model's end of text, which are not shown; on_text receives each new piece of text."""
    prompt = template.prompt_ids(turns)
    block = model.config.block_size
    if len(prompt) >= block:  # the start of a long conversation falls out of the context, as in a window
        prompt = prompt[-(block - 1):]
    device = next(model.parameters()).device
    stop = list(dict.fromkeys([*template.end_of_turn_ids, *eos_ids(model.config)]))
    text_stop = template.end_of_turn if not template.end_of_turn_ids else ""  # not one token: stop on its text
    gen = torch.Generator(device=device).manual_seed(seed)
    new_ids: list[int] = []
    shown = [""]

    def on_token(t) -> None:
        token = int(t[0])
        if token in stop or (text_stop and text_stop in shown[0]):
            return
        new_ids.append(token)
        text = tokenizer.decode(new_ids)
        if on_text is not None and not text.endswith("\ufffd") and not (text_stop and text_stop in text):
            on_text(text[len(shown[0]):])
        shown[0] = text

    model.generate(torch.tensor([prompt], device=device), max_new_tokens, temperature=temperature,
                   top_k=None, top_p=None, generator=gen, on_token=on_token, eos=stop)
    reply = tokenizer.decode(new_ids)
    return reply.split(text_stop)[0] if text_stop else reply


def run_template(tokenizer: Tokenizer, model_cfg=None) -> ChatTemplate:
    """The template a model was trained with: the one its tokenizer carries (trained on chat data here), else
    its pretrained folder's own (model_cfg.init), else ChatML."""
    chat = tokenizer.chat or {}
    if chat.get("template"):
        return ChatTemplate(chat["template"], tokenizer, chat.get("bos_token", ""), chat.get("eos_token", ""))
    folder = Path(model_cfg.init).expanduser() if model_cfg is not None and model_cfg.init else None
    folder = folder if folder is not None and folder.is_dir() else None
    names = model_tokens(folder)
    return ChatTemplate(template_text("model", folder), tokenizer, names.get("bos_token", ""),
                        names.get("eos_token", ""))


def export_template(tokenizer: Tokenizer, model_cfg) -> tuple[str | None, list[int]]:
    """For an export (HF, GGUF): the chat template's Jinja text and its end-of-turn ids, or (None, []) for a
    model not trained on conversations here and without a template of its own."""
    chat = tokenizer.chat or {}
    folder = Path(model_cfg.init).expanduser() if model_cfg.init else None
    if not chat.get("template") and not (folder is not None and folder.is_dir() and model_template(folder)):
        return None, []
    template = run_template(tokenizer, model_cfg)
    return template.text, template.end_of_turn_ids


def held_out_replies(template: ChatTemplate, conversations: list[Conversation], tokens: int, limit: int = 3):
    """A sampler for chat data: model -> (heading, text) with the model's greedy reply to the last user turn of
    a few held-out conversations, beside the reference reply."""
    cases = []
    for conv in conversations:
        last = max(i for i, t in enumerate(conv.turns) if t.role == "assistant")
        cases.append((conv.where, conv.turns[:last], conv.turns[last].content))
        if len(cases) == limit:
            break

    def sample(model) -> tuple[str, str]:
        tokenizer = template.tokenizer
        assert tokenizer is not None  # a training template is bound to the run's tokenizer
        parts = []
        for where, turns, reference in cases:
            reply = chat_reply(model, tokenizer, template, turns, max_new_tokens=tokens)
            asked = turns[-1].content if turns else ""
            parts.append(f"[{where}] {_short(asked)}\n  model:     {_short(reply)}\n  reference: {_short(reference)}")
        return "held-out conversations:\n", "\n\n".join(parts)
    return sample


def _short(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
