"""Conversations in: JSONL files (or a folder of them) in any of the common shapes, detected per file.

Shapes: `{"messages": [{"role", "content"}]}`, `{"prompt", "completion"}`, Alpaca's `{"instruction", "input",
"output"}` and ShareGPT's `{"conversations": [{"from", "value"}]}`. Anything else is refused with the file, the
line and what is wrong, so nothing trains on data that was misread. No torch here.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from autogpt_gui.errors import DataError

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "bing": "assistant", "bard": "assistant"}
SHAPES = {"messages": "messages", "prompt": "prompt/completion", "instruction": "Alpaca (instruction/output)",
          "conversations": "ShareGPT (conversations)"}
SUFFIXES = (".jsonl", ".json")
MAX_LINE = 64 << 20  # one conversation of more than 64 MiB is not a conversation


@dataclass
class Turn:
    """One message: role is system, user or assistant."""

    role: str
    content: str


@dataclass
class Conversation:
    """The turns of one conversation and where it came from ("file.jsonl:12")."""

    turns: list[Turn]
    where: str

    def replies(self) -> int:
        """How many assistant turns it holds."""
        return sum(t.role == "assistant" for t in self.turns)


def read_conversations(path: str | Path) -> list[Conversation]:
    """Every conversation of a JSONL file, or of all .jsonl / .json files below a folder (sorted).

    A line that is not a conversation raises DataError naming the file and the line, at `data.path`.
    """
    root = Path(path).expanduser()
    found = [c for f, name in conversation_files(root) for c in _read_file(f, name)]
    if not found:
        raise DataError(f"{root} holds no conversations (one JSON object per line); choose another file", "data.path")
    return found


def conversation_files(path: str | Path) -> list[tuple[Path, str]]:
    """(file, name in messages) of a chat source: the file itself, or a folder's .jsonl / .json files, sorted."""
    root = Path(path).expanduser()
    if not root.is_dir():
        return [(root, root.name)]
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                   and not p.name.startswith("."))
    if not files:
        raise DataError(f"{root} holds no .jsonl files of conversations; choose another folder", "data.path")
    return [(f, str(f.relative_to(root))) for f in files]


def _read_file(path: Path, name: str) -> list[Conversation]:
    out: list[Conversation] = []
    shape = None
    for lineno, line in _lines(path, name):
        where = f"{name}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: not JSON ({err.msg} at column {err.colno}); each line must be one JSON "
                            "object", "data.path") from None
        except ValueError as err:  # numbers too long to read, and the like
            raise DataError(f"{where}: not JSON ({err}); each line must be one JSON object", "data.path") from None
        if not isinstance(record, dict):
            raise DataError(f"{where}: a JSON {type(record).__name__}, not an object with the turns of a "
                            "conversation", "data.path")
        found = _shape_of(record, where)
        if shape is None:
            shape = found
        elif found != shape:
            raise DataError(f"{where}: this line is {SHAPES[found]} but the file's first conversation is "
                            f"{SHAPES[shape]} (mixed shapes); keep one shape per file", "data.path")
        out.append(_checked(Conversation(_turns(record, found, where), where)))
    return out


def _lines(path: Path, name: str) -> Iterator[tuple[int, str]]:
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; check the path", "data.path") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}", "data.path") from None
    with fh:
        for lineno, raw in enumerate(iter(lambda: fh.readline(MAX_LINE + 1), b""), 1):
            if len(raw) > MAX_LINE:
                raise DataError(f"{name}:{lineno}: a line of more than {MAX_LINE >> 20} MiB; is this a JSONL file "
                                "of conversations?", "data.path")
            if b"\x00" in raw:
                raise DataError(f"{name}:{lineno}: binary data (NUL bytes); choose a JSONL text file", "data.path")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{name}:{lineno}: not UTF-8 text (bad byte at column {err.start + 1}); re-save it "
                                "as UTF-8", "data.path") from None
            if line.strip():
                yield lineno, line


def _shape_of(record: dict, where: str) -> str:
    for key in SHAPES:
        if key in record:
            return key
    keys = ", ".join(sorted(record)[:6]) or "none"
    raise DataError(f"{where}: not a conversation (its keys: {keys}); expected 'messages', 'prompt' + "
                    "'completion', 'instruction' + 'output', or 'conversations'", "data.path")


def _text(value, what: str, where: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{where}: {what} must be text, not {type(value).__name__}", "data.path")
    return value


def _turns(record: dict, shape: str, where: str) -> list[Turn]:
    if shape == "prompt":
        if "completion" not in record:
            raise DataError(f"{where}: a prompt without a 'completion' (the reply to train on)", "data.path")
        turns = [Turn("system", _text(record["system"], "'system'", where))] if record.get("system") else []
        return turns + [Turn("user", _text(record["prompt"], "'prompt'", where)),
                        Turn("assistant", _text(record["completion"], "'completion'", where))]
    if shape == "instruction":
        if "output" not in record:
            raise DataError(f"{where}: an instruction without an 'output' (the reply to train on)", "data.path")
        ask = _text(record["instruction"], "'instruction'", where)
        extra = _text(record.get("input") or "", "'input'", where)
        return [Turn("user", ask + ("\n\n" + extra if extra.strip() else "")),
                Turn("assistant", _text(record["output"], "'output'", where))]
    key, role_key, text_key = ("messages", "role", "content") if shape == "messages" else \
        ("conversations", "from", "value")
    items = record[key]
    if not isinstance(items, list) or not items:
        raise DataError(f"{where}: '{key}' must be a non-empty list of turns", "data.path")
    turns = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict) or role_key not in item or text_key not in item:
            raise DataError(f"{where}: turn {i} must be an object with '{role_key}' and '{text_key}'", "data.path")
        role = item[role_key]
        mapped = role if shape == "messages" and role in ROLES else \
            SHAREGPT_ROLES.get(role) if shape == "conversations" and isinstance(role, str) else None
        if mapped is None:
            known = ", ".join(ROLES if shape == "messages" else SHAREGPT_ROLES)
            raise DataError(f"{where}: turn {i} has the unknown role {role!r}; use one of {known}", "data.path")
        turns.append(Turn(mapped, _text(item[text_key], f"turn {i}'s '{text_key}'", where)))
    return turns


def _checked(conv: Conversation) -> Conversation:
    for i, turn in enumerate(conv.turns, 1):
        if turn.role == "assistant" and not turn.content.strip():
            raise DataError(f"{conv.where}: turn {i} is an empty reply; remove it or write the reply", "data.path")
    if not conv.replies():
        raise DataError(f"{conv.where}: a conversation without a reply (no assistant turn), so nothing in it would "
                        "be trained", "data.path")
    return conv
