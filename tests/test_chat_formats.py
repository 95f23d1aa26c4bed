"""Conversations in: the four common shapes read to the same turns; anything else refused with file and line."""
from __future__ import annotations

import json

import pytest

from autogpt_gui.config import RunConfig
from autogpt_gui.engine.data.chat import Turn, read_conversations
from autogpt_gui.errors import DataError
from autogpt_gui.validation import validate


def _write(path, *records) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return str(path)


def test_every_shape_reads_to_its_turns(tmp_path):
    cases = {
        "messages": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                  {"role": "assistant", "content": "Hello."}]},
        "prompt": {"prompt": "Hi", "completion": "Hello."},
        "alpaca": {"instruction": "Translate", "input": "chat", "output": "cat"},
        "sharegpt": {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]},
    }
    got = {name: read_conversations(_write(tmp_path / f"{name}.jsonl", record))[0].turns
           for name, record in cases.items()}
    assert got["messages"] == [Turn("system", "Be brief."), Turn("user", "Hi"), Turn("assistant", "Hello.")]
    assert got["prompt"] == got["sharegpt"] == [Turn("user", "Hi"), Turn("assistant", "Hello.")]
    assert got["alpaca"] == [Turn("user", "Translate\n\nchat"), Turn("assistant", "cat")]


def test_a_folder_reads_all_its_files_in_order_and_names_each_line(tmp_path):
    _write(tmp_path / "b.jsonl", {"prompt": "2", "completion": "two"})
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "a.jsonl", {"prompt": "1", "completion": "one"}, "", {"prompt": "3", "completion": "x"})
    convs = read_conversations(tmp_path)
    assert [c.where for c in convs] == ["b.jsonl:1", "sub/a.jsonl:1", "sub/a.jsonl:3"]


BAD = [
    ('{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": ', ":3: not JSON"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]}', "unknown role 'robot'"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "  "}]}', "empty reply"),
    ('{"messages": [{"role": "user", "content": "a"}]}', "without a reply"),
    ('{"prompt": "a", "completion": "b"}\n{"instruction": "a", "output": "b"}', ":3: this line is Alpaca"),
    ('{"text": "just text"}', "not a conversation (its keys: text)"),
    ('[1, 2]', "a JSON list"),
    ('{"prompt": "a"}', "without a 'completion'"),
    ('{"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "b"}]}', "must be text"),
]


@pytest.mark.parametrize("text,expected", BAD)
def test_bad_lines_are_refused_with_file_and_line(tmp_path, text, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n" + text + "\n", encoding="utf-8")  # a blank first line: line numbers count it
    with pytest.raises(DataError) as err:
        read_conversations(path)
    message = str(err.value)
    assert "bad.jsonl:" in message and expected in message, message
    assert err.value.field == "data.path"
    assert ":1:" not in message  # the blank line is never blamed


def test_binary_empty_and_missing_files_are_refused_by_name(tmp_path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(b'{"prompt": "a", "completion": "b"}\n\x00\x01\x02\xff')
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"prompt": "caf\xe9", "completion": "b"}\n'.encode("latin-1"))
    for path, expected in ((binary, "model.bin:2: binary data"), (empty, "holds no conversations"),
                           (latin, "latin.jsonl:1: not UTF-8"), (tmp_path / "gone.jsonl", "does not exist")):
        with pytest.raises(DataError, match=expected):
            read_conversations(path)


def test_validate_marks_the_chat_fields():
    cfg = RunConfig()
    cfg.data.source, cfg.data.path = "chat", ""
    cfg.data.chat_template, cfg.data.train_on = "/no/such/template.jinja", "everything"
    fields = dict(validate(cfg))
    assert "needs a path" in fields["data.path"]
    assert "not a file" in fields["data.chat_template"]
    assert "assistant or all" in fields["data.train_on"]
