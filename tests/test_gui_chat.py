"""Chat in the window (issue 20): the Data tab's mask preview and the playground's chat, driven like a user."""
from __future__ import annotations

import json
import re

import pytest
from PySide6.QtCore import Qt

from autogpt_gui.config import RunConfig


def test_a_failed_reply_gives_the_message_back_and_says_why(qtbot):
    from autogpt_gui.ui.chat_view import ChatBox

    box = ChatBox()
    qtbot.addWidget(box)
    sent = []
    box.send_requested.connect(lambda turns, base: sent.append((turns, base)))
    box.system.setText("Be brief.")
    qtbot.keyClicks(box.message, "hello")
    qtbot.keyClick(box.message, Qt.Key_Return)
    assert sent == [([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}], [])]
    assert not box.send.isEnabled() and box.message.text() == ""
    qtbot.keyClick(box.message, Qt.Key_Return)  # nothing more is sent while the reply is awaited
    assert len(sent) == 1

    box.reply_failed("model", "model.pt is not a checkpoint")
    assert box.send.isEnabled() and box.message.text() == "hello"
    assert "model.pt is not a checkpoint" in box.model_view.toPlainText()
    assert [t["role"] for t in box.model_view.turns] == ["system"]

    qtbot.mouseClick(box.send, Qt.LeftButton)
    box.add_reply("model", "Hi.")
    assert [t["content"] for t in box.model_view.turns] == ["Be brief.", "hello", "Hi."]
    box.add_reply("model", "a late second answer")  # nothing was asked: dropped
    assert len(box.model_view.turns) == 3


CONVERSATIONS = [
    [("user", "hi"), ("assistant", "hello"), ("user", "how are you"), ("assistant", "fine"), ("user", "bye"),
     ("assistant", "see you")],
    [("user", "2+2"), ("assistant", "4")],
    [("system", "be kind"), ("user", "name?"), ("assistant", "Ada")],
]
END = "<|im_end|>"


def _write_chat(path, conversations) -> None:
    lines = [json.dumps({"messages": [{"role": r, "content": c} for r, c in conv]}) for conv in conversations]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _chatml_tokens(conv) -> int:
    """Tokens of a conversation in ChatML with a char tokenizer that holds <|im_start|> and <|im_end|> whole."""
    return sum(1 + len(role) + 1 + len(content) + 1 + 1 for role, content in conv)


def _highlighted(view) -> tuple[str, str]:
    """(trained, masked) text of the mask preview as drawn: fragments by their background's colour."""
    from PySide6.QtGui import QColor

    trained_green = QColor(46, 160, 67).green()
    doc, out = view.document(), {True: [], False: []}
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            color = frag.charFormat().background().color()
            trained = color.green() == trained_green and color.red() == 46
            out[trained].append(frag.text().replace("\u00a0", " "))
            it += 1
        block = block.next()
    return "".join(out[True]), "".join(out[False])


@pytest.fixture
def chat_file(tmp_path):
    path = tmp_path / "chat.jsonl"
    _write_chat(path, CONVERSATIONS)
    return path


CHAT = ["model.preset='custom'", "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "model.block_size=96",
        "train.precision='fp32'", "train.device='cpu'", "data.source='chat'", "data.tokenizer='char'"]


def test_the_data_tab_shows_a_conversation_with_its_trained_tokens_highlighted_and_the_counts(make_window, qtbot,
                                                                                                chat_file):
    w = make_window([*CHAT, f"data.path='{chat_file}'"])
    w.tabs.setCurrentWidget(w.data)
    masks = w.data.masks
    qtbot.waitUntil(lambda: bool(masks.examples), timeout=120_000)  # read, tokenized and masked on its own
    assert masks.isVisible() and not w.data.tokens.isVisible()
    assert w.samples.chat_mode(), "a chat source turns the playground to chat"

    trained, masked = _highlighted(masks.view)
    first = CONVERSATIONS[0]
    assert trained == "".join(c + END for r, c in first if r == "assistant")  # every reply and its end of turn
    assert "hi" in masked and "how are you" in masked and "<|im_start|>assistant" in masked
    assert "Conversation 1 of 3" in masks.position.text() and "chat.jsonl:1" in masks.position.text()
    replies = [c for r, c in first if r == "assistant"]
    assert f"{sum(len(c) + 1 for c in replies)} of {_chatml_tokens(first)} tokens trained" in masks.position.text()

    qtbot.mouseClick(masks.next, Qt.LeftButton)
    assert "chat.jsonl:2" in masks.position.text()
    assert _highlighted(masks.view)[0] == "4" + END
    qtbot.mouseClick(masks.next, Qt.LeftButton)
    assert _highlighted(masks.view)[0] == "Ada" + END and not masks.next.isEnabled()

    # the counts, training and held out together, are every reply plus its end-of-turn token of all the tokens
    data = masks.counts.text() + masks.held_out.text()
    numbers = [int(n.replace(",", "")) for n in re.findall(r"<b>([\d,]+)</b>", data)]
    (convs, turns, trained_n, tokens), (v_convs, v_turns, v_trained, v_tokens) = numbers[:4], numbers[4:8]
    assert convs + v_convs == 3 and turns + v_turns == sum(len(c) for c in CONVERSATIONS)
    assert trained_n + v_trained == sum(len(c) + 1 for conv in CONVERSATIONS for r, c in conv if r == "assistant")
    assert tokens + v_tokens == sum(map(_chatml_tokens, CONVERSATIONS))
    w.grab().save(str(chat_file.parent / "data-tab.png"))

    w.set_config(RunConfig().with_overrides([*CHAT, f"data.path='{chat_file}'", "data.train_on='all'"]))
    qtbot.waitUntil(lambda: "train on: all" in masks.settings.text() and bool(masks.examples), timeout=120_000)
    trained, masked = _highlighted(masks.view)
    assert masked == "" and trained.startswith("<|im_start|>user")


def test_bad_chat_data_shows_its_line_numbered_message_at_the_data_tab(make_window, qtbot, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})
                   + "\n" + json.dumps({"messages": [{"role": "robot", "content": "beep"}]}) + "\n", encoding="utf-8")
    w = make_window([*CHAT, f"data.path='{bad}'"])
    qtbot.waitUntil(lambda: "Cannot use this source" in w.data.info.text(), timeout=120_000)
    assert "bad.jsonl:2" in w.data.info.text() and "robot" in w.data.info.text()
    w.tabs.setCurrentWidget(w.data)
    w.grab().save(str(tmp_path / "bad-data.png"))
    assert not w.data.masks.examples and w.data.preview.toPlainText() == ""

    bad.write_text("{not json\n", encoding="utf-8")
    w.set_config(RunConfig().with_overrides([*CHAT, f"data.path='{bad}'", "data.val_fraction=0.2"]))
    qtbot.waitUntil(lambda: "bad.jsonl:1" in w.data.info.text() and "not JSON" in w.data.info.text(),
                    timeout=120_000)


def _greeting_conversations(n: int = 48) -> list:
    """User turns of random words, every reply "ok"; every fourth conversation has two exchanges."""
    import random

    rng = random.Random(0)
    words = ["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "nut"]
    out = []
    for i in range(n):
        conv = [("user", f"say {rng.choice(words)} {rng.choice(words)}"), ("assistant", "ok")]
        if i % 4 == 0:
            conv += [("user", f"and {rng.choice(words)}"), ("assistant", "ok")]
        out.append(conv)
    return out


def _send(qtbot, w, text: str) -> str:
    box = w.samples.chat
    qtbot.keyClicks(box.message, text)
    qtbot.keyClick(box.message, Qt.Key_Return)
    assert box.waiting == {"model"}
    qtbot.waitUntil(lambda: not box.waiting, timeout=120_000)  # the reply is whole, or it failed and says why
    assert box.model_view.turns[-1]["role"] == "assistant", box.model_view.toPlainText()
    return box.model_view.turns[-1]["content"]


@pytest.mark.slow  # trains a tiny chat model in the window first (~30 s on 2 busy cores)
def test_the_playground_chats_over_two_turns_through_the_template_and_stops_at_the_end_of_the_turn(
        make_window, qtbot, tmp_path):
    from autogpt_gui.engine.data.chat import Turn
    from autogpt_gui.engine.load import load_chat
    from autogpt_gui.engine.model.chat import chat_reply
    from autogpt_gui.engine.run.runs import Run

    path = tmp_path / "greetings.jsonl"
    _write_chat(path, _greeting_conversations())
    w = make_window([*CHAT, f"data.path='{path}'", "train.max_steps=100000", "optim.lr=0.005",
                     "optim.warmup_steps=5", "train.batch_size=8", "train.eval_interval=30", "train.eval_batches=2",
                     "train.checkpoint_interval=1000", "train.sample_tokens=8"])
    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.charts.steps.n and int(w.charts.steps.col("step")[-1]) >= 60, timeout=300_000)
    qtbot.mouseClick(w.controls.pause, Qt.LeftButton)
    qtbot.waitUntil(lambda: "Paused at step" in w.controls.status.text(), timeout=120_000)
    assert "reference" in w.samples.history.toPlainText()  # held-out replies beside their reference

    w.tabs.setCurrentWidget(w.samples)  # the live model, between two steps of the paused run
    assert w.samples.chat_mode() and w.samples.pages.currentWidget() is w.samples.chat
    assert w.samples.source.currentData() == "live"
    w.samples.temperature.setValue(0.0)
    w.samples.max_tokens.setValue(40)
    first = _send(qtbot, w, "say plum fig")
    second = _send(qtbot, w, "and kiwi")
    w.grab().save(str(tmp_path / "playground.png"))
    shown = w.samples.chat.model_view.toPlainText()
    assert END not in shown and "<|im_start|>" not in shown  # it stopped at the end of its turn
    assert [t["role"] for t in w.samples.chat.model_view.turns] == ["user", "assistant", "user", "assistant"]

    qtbot.mouseClick(w.controls.stop, Qt.LeftButton)  # saves last.pt at the paused step: the weights chatted with
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    last = str(Run(w.run_path).files.last)
    model, tokenizer, template = load_chat(last)  # the oracle: the engine's own greedy reply
    asked = [Turn("user", "say plum fig")]
    assert first == chat_reply(model, tokenizer, template, asked, max_new_tokens=40) == "ok"
    asked += [Turn("assistant", first), Turn("user", "and kiwi")]
    assert second == chat_reply(model, tokenizer, template, asked, max_new_tokens=40) == "ok"

    w.samples.use_checkpoint(last)  # the same conversation goes on with the saved checkpoint, in a job
    third = _send(qtbot, w, "say date")
    asked += [Turn("assistant", second), Turn("user", "say date")]
    assert third == chat_reply(model, tokenizer, template, asked, max_new_tokens=40)


def test_the_chat_with_the_base_side_by_side_gives_each_pane_its_own_reply(make_window, qtbot, tiny_gpt2, chat_file):
    from autogpt_gui.engine.data.chat import Turn
    from autogpt_gui.engine.load import load_chat
    from autogpt_gui.engine.model.chat import chat_reply

    w = make_window(["model.preset='custom'", "train.device='cpu'", f"model.init='{tiny_gpt2}'",
                     "data.source='chat'", f"data.path='{chat_file}'"])
    w.tabs.setCurrentWidget(w.samples)
    panel, box = w.samples, w.samples.chat
    assert panel.chat_mode() and panel.compare.isEnabled()
    panel.compare.setChecked(True)
    panel.source.setCurrentIndex(panel.source.findData("base"))
    panel.temperature.setValue(0.0)
    panel.max_tokens.setValue(6)
    qtbot.keyClicks(box.message, "hello")
    qtbot.mouseClick(box.send, Qt.LeftButton)
    assert box.waiting == {"model", "base"} and not box.send.isEnabled()
    qtbot.waitUntil(lambda: not box.waiting, timeout=120_000)

    model, tokenizer, template = load_chat(tiny_gpt2)  # a random GPT-2 without a template: ChatML, 6 tokens
    expected = chat_reply(model, tokenizer, template, [Turn("user", "hello")], max_new_tokens=6)
    assert expected
    for view in (box.model_view, box.base_view):
        assert [t["role"] for t in view.turns] == ["user", "assistant"]
        assert view.turns[-1]["content"] == expected
    assert box.base_pane.isVisibleTo(panel) and box.send.isEnabled()
    w.grab().save(str(chat_file.parent / "side-by-side.png"))

    qtbot.mouseClick(box.new_chat, Qt.LeftButton)
    assert box.model_view.turns == [] and box.base_view.turns == []

    masks = w.data.masks  # the Data tab masks what the pretrained model's own tokenizer reads
    qtbot.waitUntil(lambda: bool(masks.examples), timeout=120_000)
    trained, masked = _highlighted(masks.view)
    assert trained == "".join(c + END for r, c in CONVERSATIONS[0] if r == "assistant")


def test_a_hostile_chat_template_is_refused_at_its_setting_and_on_the_data_tab(make_window, qtbot, chat_file):
    template = chat_file.parent / "evil.jinja"
    template.write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}{% for m in messages %}{{ m['content'] }}"
                        "{% endfor %}", encoding="utf-8")
    w = make_window([*CHAT, f"data.path='{chat_file}'", f"data.chat_template='{template}'"])
    qtbot.waitUntil(lambda: "Cannot use this source" in w.data.info.text(), timeout=120_000)
    assert "template" in w.data.info.text() and not w.data.masks.examples
    assert w.config_panel.errors["data.chat_template"].text()  # the message is at the setting as well


def test_a_chat_with_a_checkpoint_file_asks_for_the_file_once_a_conversation(qtbot, monkeypatch):
    from autogpt_gui.ui import samples_panel
    from autogpt_gui.ui.samples_panel import SamplesPanel

    asked = []
    monkeypatch.setattr(samples_panel.QFileDialog, "getOpenFileName",
                        lambda *a, **k: (asked.append(1), ("/models/chat.pt", ""))[1])
    panel = SamplesPanel()
    qtbot.addWidget(panel)
    panel.mode.setCurrentIndex(panel.mode.findData("chat"))
    panel.source.setCurrentIndex(panel.source.findData("file"))
    requests = []
    panel.chat_requested.connect(requests.append)
    for text in ("hi", "and then?"):
        qtbot.keyClicks(panel.chat.message, text)
        qtbot.keyClick(panel.chat.message, Qt.Key_Return)
        panel.chat.add_reply("model", "ok")
    assert len(asked) == 1 and [r["checkpoint"] for r in requests] == ["/models/chat.pt"] * 2
    assert [len(r["turns"]) for r in requests] == [1, 3]
    qtbot.mouseClick(panel.chat.new_chat, Qt.LeftButton)
    qtbot.keyClicks(panel.chat.message, "again")
    qtbot.keyClick(panel.chat.message, Qt.Key_Return)
    assert len(asked) == 2  # a new conversation may be with another file
