"""Chat in the window (issue 20): the Data tab's mask preview and the playground's chat, driven like a user."""
from __future__ import annotations

from PySide6.QtCore import Qt


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
