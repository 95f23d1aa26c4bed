"""The chat template: hostile ones refused unrun and unhung; the ids we train on are transformers' ids."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from autogpt_gui.engine.data.chat import Conversation, Turn
from autogpt_gui.engine.data.chat_template import CHATML, ChatTemplate, model_tokens, template_text
from autogpt_gui.engine.data.tokenizers import BPETokenizer, train_tokenizer
from autogpt_gui.engine.model.hf_export import hf_tokenizer_json
from autogpt_gui.errors import DataError

DATA = Path(__file__).parent / "data"
SHAKESPEARE = Path("/work/shared/data/tinyshakespeare.txt")
CONVERSATIONS = [
    [Turn("system", "You answer in rhyme."), Turn("user", "What is the moon?"), Turn("assistant", "A light at noon."),
     Turn("user", "  And the sun?  "), Turn("assistant", " The day's begun. "), Turn("user", "Bye"),
     Turn("assistant", "Farewell, héllo ✓")],
    [Turn("user", "Say hi"), Turn("assistant", "hi")],
]

HOSTILE = {
    "__class__": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "__globals__": "{{ raise_exception.__globals__['os'].system('touch MARKER') }}",
    "os": "{{ os.system('touch MARKER') }}",
    "attr filter": "{{ messages|attr('__class__') }}",
    "nested range": "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
    "recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "exponential macro": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
    "huge string": "{{ 'x' * 10000000000 }}",
    "huge width": "{{ messages[0]['content'] | center(10000000000) }}",
}


def _refused_within(text: str, seconds: float = 20.0) -> DataError:
    """Construct the template in a thread; it must be refused before the deadline (a hang fails the test)."""
    result: dict = {}

    def build():
        try:
            ChatTemplate(text, None)
        except DataError as err:
            result["error"] = err
        result["done"] = True

    worker = threading.Thread(target=build, daemon=True)
    worker.start()
    worker.join(seconds)
    assert result.get("done"), f"the template still ran after {seconds} s"
    assert "error" in result, "the hostile template was accepted"
    return result["error"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_templates_are_refused_without_running_code_or_hanging(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _refused_within(HOSTILE[name])
    assert err.field == "data.chat_template"
    assert not (tmp_path / "MARKER").exists()


def test_a_hostile_template_file_is_refused_at_its_setting_when_the_data_is_built(tmp_path):
    from autogpt_gui.config import RunConfig
    from autogpt_gui.engine.data.chat_loader import prepare_chat

    bad = tmp_path / "evil.jinja"
    bad.write_text(HOSTILE["__globals__"])
    data = tmp_path / "c.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n')
    cfg = RunConfig()
    cfg.data.source, cfg.data.path, cfg.data.chat_template = "chat", str(data), str(bad)
    with pytest.raises(DataError, match="reaches '__globals__'") as err:
        prepare_chat(cfg.data, 32)
    assert err.value.field == "data.chat_template"


def test_every_turn_counts_replies_and_their_end_of_turn_tokens():
    tok = train_tokenizer("char", lambda: iter(["abcdefghijklmnopqrstuvwxyz .,?!'\n"]), specials=("<|im_start|>",
                                                                                                  "<|im_end|>"))
    template = ChatTemplate(CHATML, tok)
    conv = Conversation([Turn("user", "hello"), Turn("assistant", "hi there."), Turn("user", "how are you?"),
                         Turn("assistant", "well."), Turn("user", "bye"), Turn("assistant", "bye!")], "t:1")
    ids, trained = template.encode(conv)
    replies = [t.content for t in conv.turns if t.role == "assistant"]
    assert sum(trained) == sum(len(tok.encode(r)) for r in replies) + 3
    chosen = tok.decode([i for i, m in zip(ids, trained) if m])
    assert chosen == "".join(r + "<|im_end|>" for r in replies)
    _, everything = template.encode(conv, "all")
    assert all(everything)


def _hf_folder(tmp_path: Path, tok, template: str, **names) -> Path:
    """A tiny model folder's tokenizer: tokenizer.json and tokenizer_config.json with the chat template."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(hf_tokenizer_json(tok), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template, **names}), encoding="utf-8")
    return folder


def _transformers_ids(folder: Path, turns: list[Turn], generation: bool) -> list[int]:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(folder))
    out = hf.apply_chat_template([{"role": t.role, "content": t.content} for t in turns], tokenize=True,
                                 add_generation_prompt=generation)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def _tokenizer(kind: str, specials):
    text = SHAKESPEARE.read_text(encoding="utf-8")[:200_000] + "".join(
        t.content for conv in CONVERSATIONS for t in conv) + "You are Qwen, created by Alibaba Cloud."
    return train_tokenizer(kind, lambda: iter([text]), bpe_vocab_size=500, specials=specials)


@pytest.mark.parametrize("name,kind,names", [
    ("chatml", "char", {}),
    ("llama3", "byte", {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}),
    ("qwen2.5", "bpe", {"eos_token": "<|im_end|>"}),
])
def test_the_ids_we_train_on_are_transformers_apply_chat_template_ids(tmp_path, name, kind, names):
    text = CHATML if name == "chatml" else (DATA / f"{name}.jinja").read_text(encoding="utf-8")
    probe = ChatTemplate(text, None, **names)
    tok = _tokenizer(kind, [*probe.specials, *names.values()])
    folder = _hf_folder(tmp_path, tok, text, **names)
    # ours, as a run would read that folder: its template and token names, its tokenizer.json
    from tokenizers import Tokenizer as HFTokenizer

    loaded = BPETokenizer(HFTokenizer.from_file(str(folder / "tokenizer.json")))
    ours = ChatTemplate(template_text("model", folder), loaded, **model_tokens(folder))
    assert ours.end_of_turn == ("<|eot_id|>" if name == "llama3" else "<|im_end|>")
    assert len(ours.end_of_turn_ids) == 1
    for turns in CONVERSATIONS:
        ids, trained = ours.encode(Conversation(turns, "t:1"))
        assert ids == _transformers_ids(folder, turns, generation=False)
        assert ours.prompt_ids(turns[:-1]) == _transformers_ids(folder, turns[:-1], generation=True)
        replies = [t.content.strip() if name == "llama3" else t.content for t in turns if t.role == "assistant"]
        assert loaded.decode([i for i, m in zip(ids, trained) if m]) == "".join(replies)  # specials skipped
        assert sum(i in ours.end_of_turn_ids for i, m in zip(ids, trained) if m) == len(replies)
        assert loaded.token_strings(ours.end_of_turn_ids) == [ours.end_of_turn]  # the mask preview shows it
        # and our own tokenizer (char / byte / BPE with specials) gives the same ids as its HF export
        assert ChatTemplate(text, tok, **names).encode(Conversation(turns, "t:1"))[0] == ids


def test_a_template_without_the_turns_text_is_refused():
    with pytest.raises(DataError, match="does not show every turn"):
        ChatTemplate("{% for m in messages %}{{ m.role }}{% endfor %}", None)
    with pytest.raises(DataError, match="does not parse"):
        ChatTemplate("{% for m in messages %}", None)


def test_transformers_generation_marker_renders_its_body():
    text = CHATML.replace("{{ '<|im_start|>' + message['role']", "{% generation %}{{ '<|im_start|>' + message['role']").replace(
        "+ '\n' }}{% endfor %}", "+ '\n' }}{% endgeneration %}{% endfor %}")
    assert "{% generation %}" in text
    turns = CONVERSATIONS[1]
    assert ChatTemplate(text, None).render(turns) == ChatTemplate(CHATML, None).render(turns)


def test_a_pretrained_tokenizer_without_chatml_tokens_ends_turns_with_its_end_of_text(tmp_path):
    """GPT-2's tokenizer has no <|im_end|>: its replies end with <|endoftext|>, one token generation stops at."""
    from autogpt_gui.config import DataConfig
    from autogpt_gui.engine.data.chat_loader import fit_chat_tokenizer

    gpt2_like = _tokenizer("bpe", ["<|endoftext|>"])
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))  # no template
    tok = fit_chat_tokenizer(DataConfig(source="chat", chat_template="model"), gpt2_like, folder)
    assert tok.chat is not None
    template = ChatTemplate(tok.chat["template"], tok, eos_token=tok.chat["eos_token"])
    assert template.end_of_turn == "<|endoftext|>"
    assert template.end_of_turn_ids == [gpt2_like.hf.token_to_id("<|endoftext|>")]
    ids, trained = template.encode(Conversation(CONVERSATIONS[1], "t:1"))
    assert gpt2_like.token_strings([i for i, m in zip(ids, trained) if m])[-1] == "<|endoftext|>"
