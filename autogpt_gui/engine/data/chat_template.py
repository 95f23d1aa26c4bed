"""The chat template: conversations rendered to text (jinja2, sandboxed), then to ids and a loss mask.

The mask comes from the same rendering transformers' `apply_chat_template` does: the whole conversation is
rendered and tokenized at once (so the ids are the ones an exported model is given), and a token is trained
when it starts inside an assistant reply or that reply's end-of-turn token. Where each reply starts is found
by rendering the conversation up to it with the generation prompt.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autogpt_gui.engine.data.chat import Conversation, Turn
from autogpt_gui.engine.data.chat_sandbox import FIELD, compile_template, render_bounded
from autogpt_gui.engine.data.tokenizers import Tokenizer
from autogpt_gui.errors import DataError

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
          "{% endif %}")
# ChatML whose turns end with the model's end-of-text token: for a pretrained tokenizer without ChatML's tokens
# (GPT-2), so that a reply still ends with one token that generation can stop at.
CHATML_EOS = CHATML.replace("'<|im_end|>'", "eos_token")
MAX_TEMPLATE_BYTES = 1 << 20
# What looks like a special token in a rendering: <|im_start|>, <|eot_id|>, </s>, <s>, [INST], <end_of_turn>.
SPECIAL = re.compile(r"<\|[^|<>\s]{1,64}\|>|</?s>|\[/?INST\]|<(?:start|end)_of_turn>|<eos>|<bos>")
_PROBE = [Turn("system", "PROBE_SYSTEM"), Turn("user", "PROBE_USER_1"), Turn("assistant", "PROBE_REPLY_1"),
          Turn("user", "PROBE_USER_2"), Turn("assistant", "PROBE_REPLY_2")]


def template_text(setting: str, model_folder: str | Path | None) -> str:
    """The Jinja text data.chat_template names: "model" (the model folder's chat_template.jinja or
    tokenizer_config.json's chat_template; ChatML where it has none), "chatml", or a path to a Jinja file."""
    if setting == "chatml" or (setting == "model" and model_folder is None):
        return CHATML
    if setting == "model":
        return model_template(Path(model_folder or ".")) or CHATML
    path = Path(setting).expanduser()
    try:
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            raise DataError(f"{path} is over 1 MiB: not a chat template", FIELD)
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; choose a Jinja file, model or chatml", FIELD) from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; choose a Jinja file, model or chatml", FIELD) from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; choose a Jinja template file", FIELD) from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}", FIELD) from None


def model_template(folder: Path) -> str | None:
    """A model folder's own template (chat_template.jinja, else tokenizer_config.json's), or None."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config = _tokenizer_config(folder)
    value = config.get("chat_template")
    if isinstance(value, list):  # [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
        value = named.get("default") or next(iter(named.values()), None)
    return value if isinstance(value, str) and value.strip() else None


def model_tokens(folder: str | Path | None) -> dict[str, str]:
    """bos_token / eos_token text of a model folder's tokenizer_config.json (what templates call them)."""
    config = _tokenizer_config(Path(folder)) if folder is not None else {}
    out = {}
    for key in ("bos_token", "eos_token"):
        value = config.get(key)
        value = value.get("content") if isinstance(value, dict) else value
        if isinstance(value, str):
            out[key] = value
    return out


def _tokenizer_config(folder: Path) -> dict:
    try:
        data = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class Encoded:
    """A conversation as the model sees it: ids, which are trained, and the first token of every turn."""

    ids: list[int]
    trained: list[bool]
    turn_starts: list[int]


class ChatTemplate:
    """A sandboxed chat template bound to a tokenizer; a hostile or broken one is refused at construction."""

    def __init__(self, text: str, tokenizer: Tokenizer | None, bos_token: str = "", eos_token: str = "") -> None:
        self.text, self.tokenizer = text, tokenizer
        self.bos_token, self.eos_token = bos_token, eos_token
        self._template = compile_template(text)
        probe = self._probe()
        self.render(probe, add_generation_prompt=True)
        rendered = self.render(probe)
        if any(t.content not in rendered for t in probe):
            raise DataError("the chat template does not show every turn's text; choose a chat template "
                            "(chatml, the model's own, or a file)", FIELD)
        after = rendered[rendered.rindex(probe[-1].content) + len(probe[-1].content):]
        found = SPECIAL.search(after)
        self.end_of_turn = found.group() if found else eos_token  # the text that ends a reply
        self.specials = tuple(dict.fromkeys(
            [*SPECIAL.findall(rendered + self.render(probe[:-1], add_generation_prompt=True)),
             *([self.end_of_turn] if self.end_of_turn else [])]))
        self.end_of_turn_ids: list[int] = self._end_ids()

    def _probe(self) -> list[Turn]:
        """The probe conversation this template accepts: with a system turn, else without."""
        try:
            self.render(_PROBE)
            return _PROBE
        except DataError as err:
            if "template failed" not in str(err):
                raise
        self.render(_PROBE[1:])
        return _PROBE[1:]

    def _end_ids(self) -> list[int]:
        if self.tokenizer is None or not self.end_of_turn:
            return []
        ids = self.tokenizer.encode_offsets(self.end_of_turn)[0]
        return ids if len(ids) == 1 else []

    def render(self, turns: Sequence[Turn], add_generation_prompt: bool = False) -> str:
        """The text of turns, as transformers' apply_chat_template(..., tokenize=False) renders it."""
        messages = [{"role": t.role, "content": t.content} for t in turns]
        return render_bounded(self._template, len(messages), messages=messages,
                              add_generation_prompt=add_generation_prompt, bos_token=self.bos_token,
                              eos_token=self.eos_token)

    def encode(self, conv: Conversation, train_on: str = "assistant") -> tuple[list[int], list[bool]]:
        """The ids of the whole conversation and, for each, whether it is trained: with train_on "assistant"
        every reply's tokens and its end-of-turn token; with "all", every token."""
        enc = self.encode_turns(conv, train_on)
        return enc.ids, enc.trained

    def encode_turns(self, conv: Conversation, train_on: str = "assistant") -> Encoded:
        """encode(), with the index of the first token of every turn (where a long conversation may be split)."""
        if self.tokenizer is None:
            raise DataError("a chat template needs a tokenizer to encode", FIELD)
        turns = conv.turns
        text = self.render(turns)
        ids, starts = self.tokenizer.encode_offsets(text)
        spans, turn_chars, cursor = [], [], 0
        for i, turn in enumerate(turns):
            before = self.render(turns[:i]) if i else ""
            turn_chars.append(len(before) if text.startswith(before) else cursor)
            if turn.role != "assistant":
                continue
            head = self.render(turns[:i], add_generation_prompt=True)
            content = turn.content.strip()
            begin = len(head) if text.startswith(head) else text.find(content, cursor)
            if begin < 0:
                raise DataError(f"{conv.where}: the chat template does not show reply {i + 1} as it was written",
                                FIELD)
            end = text.find(content, begin) + len(content) if content in text[begin:] else begin
            close = text.find(self.end_of_turn, end) if self.end_of_turn else -1
            end = close + len(self.end_of_turn) if close >= 0 and not text[end:close].strip() else end
            spans.append((begin, end))
            cursor = end
        trained = [train_on == "all" or any(b <= s < e for b, e in spans) for s in starts]
        token_of = _token_index(starts)
        return Encoded(ids, trained, [token_of(c) for c in turn_chars])

    def prompt_ids(self, turns: list[Turn]) -> list[int]:
        """The ids of the conversation so far and the assistant's opening: what a reply is generated from."""
        if self.tokenizer is None:
            raise DataError("a chat template needs a tokenizer to encode", FIELD)
        return self.tokenizer.encode_offsets(self.render(turns, add_generation_prompt=True))[0]


def _token_index(starts: list[int]):
    import bisect

    return lambda char: bisect.bisect_left(starts, char)
