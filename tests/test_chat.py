"""Chat fine-tuning end to end: the mask decides what is learned, the export replies as our chat does, and the
command line trains, counts and chats."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from autogpt_gui.cli import main
from autogpt_gui.config import RunConfig
from autogpt_gui.engine.data.chat import Conversation, Turn
from autogpt_gui.engine.data.chat_template import CHATML, ChatTemplate
from autogpt_gui.engine.data.tokenizers import train_tokenizer
from autogpt_gui.engine.model.chat import chat_reply, export_template, run_template
from autogpt_gui.engine.model.gpt import AutoGPTModel, GPTConfig
from autogpt_gui.engine.model.hf_export import export_hf

DATA = Path(__file__).parent / "data"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def one_thread():
    """One torch thread: on a shared, loaded machine two threads of a tiny model run several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reversal_file(path: Path, n: int, seed: int = 0) -> str:
    """Conversations whose prompt is ten random letters and a word; the reply is the word reversed."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            noise = "".join(rng.choice(LETTERS) for _ in range(10))
            word = "".join(rng.choice("abcdefgh") for _ in range(4))
            f.write(json.dumps({"prompt": f"{noise} {word}", "completion": word[::-1]}) + "\n")
    return str(path)


def chat_config(path: str, *overrides: str) -> RunConfig:
    return RunConfig(name="chat").with_overrides([
        "model.preset='custom'", "model.n_layer=2", "model.n_head=4", "model.n_embd=64", "model.block_size=48",
        "data.source='chat'", f"data.path='{path}'", "train.batch_size=32", "train.eval_batches=4",
        "train.checkpoint_interval=0", "optim.warmup_steps=20", "optim.lr=3e-3", "optim.min_lr=3e-4",
        "train.precision='fp32'", "train.sample_tokens=0", "train.device='cpu'", "train.seed=1", *overrides])


def _transformers_reply(folder: Path, turns: list[Turn], max_new_tokens: int) -> tuple[str, list[int]]:
    """The greedy reply of the exported folder through transformers alone, and its generated ids."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    enc = tok.apply_chat_template([{"role": t.role, "content": t.content} for t in turns],
                                  add_generation_prompt=True, tokenize=True)
    ids = list(enc["input_ids"] if hasattr(enc, "keys") else enc)
    out = model.generate(torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False)[0, len(ids):].tolist()
    return tok.decode(out, skip_special_tokens=True), out


@pytest.mark.parametrize("arch,kind,template", [("gpt2", "char", "chatml"), ("llama", "byte", "llama3")])
def test_the_export_replies_through_transformers_as_our_chat_does(tmp_path, arch, kind, template, one_thread):
    text = CHATML if template == "chatml" else (DATA / "llama3.jinja").read_text(encoding="utf-8")
    names = {"bos_token": "<|begin_of_text|>"} if template == "llama3" else {}
    tok = train_tokenizer(kind, lambda: iter([LETTERS + " ?\n"]), specials=[*ChatTemplate(text, None, **names).specials,
                                                                            *names.values()])
    tok.chat = {"template": text, **names}
    extra = {"n_kv_head": 2} if arch == "llama" else {}
    torch.manual_seed(0)
    model = AutoGPTModel(GPTConfig(vocab_size=tok.vocab_size, arch=arch, n_layer=2, n_head=4, n_embd=32,
                                   block_size=96, **extra)).eval()
    out = export_hf(model, tok, tmp_path / "export", card="test")
    generation = json.loads((out / "generation_config.json").read_text())
    template_ids = run_template(tok).end_of_turn_ids
    assert generation["eos_token_id"] == template_ids[0]
    assert (out / "chat_template.jinja").read_text() == text == json.loads(
        (out / "tokenizer_config.json").read_text())["chat_template"]
    assert export_template(tok, model.config) == (text, template_ids)
    turns = [Turn("user", "abc def?"), Turn("assistant", "fed cba"), Turn("user", "ghi?")]
    ours = chat_reply(model, tok, run_template(tok), turns, max_new_tokens=12)
    theirs, _ = _transformers_reply(out, turns, 12)
    assert ours == theirs


def test_cli_chat_talks_to_an_exported_folder_through_its_template(tmp_path, monkeypatch, capsys, one_thread):
    tok = train_tokenizer("char", lambda: iter([LETTERS + " \n"]), specials=ChatTemplate(CHATML, None).specials)
    tok.chat = {"template": CHATML}
    torch.manual_seed(0)
    model = AutoGPTModel(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=64)).eval()
    out = export_hf(model, tok, tmp_path / "export", card="test")
    lines = iter(["hello", "again"])

    def fake_input(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    assert main(["chat", str(out), "--max-new-tokens", "6", "--base", str(out)]) == 0
    printed = capsys.readouterr().out
    first = chat_reply(model, tok, run_template(tok), [Turn("user", "hello")], 6)
    assert f"model> {first}\nbase> {first}\n" in printed and "'<|im_end|>'" in printed
    assert printed.count("model> ") == printed.count("base> ") == 2


def test_train_prints_the_chat_counts_and_samples_held_out_replies(tmp_path, capsys, monkeypatch, one_thread):
    data = reversal_file(tmp_path / "rev.jsonl", 40)
    out = tmp_path / "run"
    assert main(["train", "--quiet", "--out", str(out), "--set", f"data.path={data}", "--set", "data.source=chat",
                 "--set", "train.max_steps=4", "--set", "train.eval_interval=4", "--set", "train.sample_tokens=6",
                 "--set", "model.preset=nano", "--set", "model.block_size=48", "--set", "optim.warmup_steps=1",
                 "--set", "train.device=cpu", "--set", "train.precision=fp32", "--set", "train.batch_size=4"]) == 0
    printed = capsys.readouterr().out
    assert "36 conversations, 72 turns, 180 trained tokens of" in printed  # 36 replies of 4 letters + end of turn
    assert "held out: 4 conversations" in printed
    sample = json.loads((out / "samples.jsonl").read_text().splitlines()[-1])["text"]
    assert sample.count("reference: ") == 3 and "model: " in sample
    monkeypatch.setattr("builtins.input", lambda prompt: (_ for _ in ()).throw(EOFError))
    assert main(["chat", str(out)]) == 0  # the run folder: its own template, from its tokenizer
    assert "template ends turns with '<|im_end|>'" in capsys.readouterr().out


@pytest.mark.slow
def test_the_mask_matters_replies_learned_and_the_random_text_left_out_of_the_loss(tmp_path, one_thread):
    """About 25 s on one loaded core: two runs of 150 steps on 1,500 conversations."""
    from autogpt_gui.engine.session import build_session

    data = reversal_file(tmp_path / "rev.jsonl", 1500)
    results = {}
    for train_on in ("assistant", "all"):
        session = build_session(chat_config(data, f"data.train_on='{train_on}'", "train.max_steps=150",
                                            "train.eval_interval=150"))
        session.trainer.train()
        results[train_on] = session
    assistant, everything = results["assistant"], results["all"]
    held = assistant.data.held_out
    assert len(held) == 150
    right = sum(chat_reply(assistant.model, assistant.tokenizer, assistant.data.template, c.turns[:-1], 8)
                == c.turns[-1].content for c in held)
    assert right >= 0.9 * len(held), f"{right} of {len(held)} held-out words reversed"
    # the same data and steps: counting every token, the loss is held up by the unpredictable letters
    loss_replies, loss_all = assistant.trainer.last_val_loss, everything.trainer.last_val_loss
    assert loss_replies is not None and loss_all is not None
    assert loss_all > 0.5 and loss_all > 5 * loss_replies, (loss_replies, loss_all)
    # the trained model, exported, stops at the end of its turn in transformers and says what our chat says
    out = export_hf(assistant.model, assistant.tokenizer, tmp_path / "export", card="test")
    eot = assistant.data.template.end_of_turn_ids
    for conv in held[:5]:
        ours = chat_reply(assistant.model, assistant.tokenizer, assistant.data.template, conv.turns[:-1], 8)
        theirs, ids = _transformers_reply(out, conv.turns[:-1], 8)
        assert theirs == ours and ids[-1] == eot[0] and len(ids) < 8


def test_a_conversation_longer_than_the_context_is_split_at_turns(tmp_path):
    from autogpt_gui.engine.data.chat_loader import ChatCounts, pack

    tok = train_tokenizer("char", lambda: iter([LETTERS + " \n"]), specials=ChatTemplate(CHATML, None).specials)
    template = ChatTemplate(CHATML, tok)
    turns = [t for i in range(6) for t in (Turn("user", "ask " + LETTERS[i] * 3), Turn("assistant", "ok " + LETTERS[i]))]
    long = template.encode_turns(Conversation(turns, "t:1"))
    short = template.encode_turns(Conversation(turns[:2], "t:2"))
    huge = template.encode_turns(Conversation([Turn("user", "x" * 200), Turn("assistant", "y" * 200)], "t:3"))
    counts = ChatCounts()
    windows, masks = pack([long, short, huge], 63, tok.vocab_size, counts)
    assert counts.split == 1 and counts.truncated == 1
    assert windows.dtype.name == "uint16" and windows.shape[1] == 64
    starts = [tok.decode(w[:12].tolist()) for w in windows]
    assert all(s.startswith("<|im_start|>") for s in starts)  # every window starts at a turn
    for w, m in zip(windows, masks):
        text = tok.decode([i for i, keep in zip(w.tolist(), m) if keep])
        assert "ask" not in text and "x" not in text  # prompts never trained, padding never trained


def test_the_token_cache_gives_the_same_windows_and_notices_a_changed_file(tmp_path):
    from autogpt_gui.engine.data.chat_loader import prepare_chat

    cfg = chat_config(reversal_file(tmp_path / "rev.jsonl", 30))
    fresh = prepare_chat(cfg.data, 48, cache_root=tmp_path / "cache")
    again = prepare_chat(cfg.data, 48, cache_root=tmp_path / "cache")
    assert not fresh.from_cache and again.from_cache
    for name in ("train", "train_mask", "val", "val_mask"):
        assert (getattr(fresh, name) == getattr(again, name)).all()
    assert again.counts == fresh.counts and again.tokenizer.to_json() == fresh.tokenizer.to_json()
    assert again.held_out == fresh.held_out and again.template.end_of_turn_ids == fresh.template.end_of_turn_ids
    reversal_file(tmp_path / "rev.jsonl", 30, seed=1)  # other conversations, same size
    assert not prepare_chat(cfg.data, 48, cache_root=tmp_path / "cache").from_cache
    cfg.data.train_on = "all"
    assert not prepare_chat(cfg.data, 48, cache_root=tmp_path / "cache").from_cache
