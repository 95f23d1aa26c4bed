"""The playground's chat: a conversation with the chosen model (and the base beside it), one turn at a time."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

ROLE_STYLE = {"system": ("#6c757d", "System"), "user": ("#1f6feb", "You"), "assistant": ("#2e7d32", "Model")}


class ChatTranscript(QTextEdit):
    """A read-only conversation: the turns so far, each under its speaker, and a note while a reply is awaited."""

    def __init__(self, placeholder: str, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setPlaceholderText(placeholder)
        self.turns: list[dict] = []
        self.note = ""
        self.partial: str | None = None  # the reply as it streams in, until it is whole

    def reset(self) -> None:
        self.turns, self.note, self.partial = [], "", None
        self._render()

    def add(self, role: str, content: str) -> None:
        self.turns.append({"role": role, "content": content})
        self.note, self.partial = "", None
        self._render()

    def stream(self, piece: str) -> None:
        """More of the reply being written."""
        self.partial = (self.partial or "") + piece
        self.note = ""
        self._render()

    def set_note(self, note: str) -> None:
        """A line under the last turn (thinking…, or why no reply came); '' removes it."""
        self.note = note
        self._render()

    def _render(self) -> None:
        blocks = []
        shown = self.turns + ([{"role": "assistant", "content": self.partial + " …"}] if self.partial else [])
        for turn in shown:
            color, name = ROLE_STYLE.get(turn["role"], ("#444", turn["role"]))
            shown_text = turn["content"].rstrip()
            body = html.escape(shown_text).replace("\n", "<br>") if shown_text.strip() else \
                f"<i style='color:#8a8a8a'>({_blank(turn['content'])})</i>"
            blocks.append(f"<p style='margin:0 0 10px 0'><b style='color:{color}'>{name}</b><br>{body}</p>")
        if self.note:
            blocks.append(f"<p style='color:#8a8a8a'><i>{html.escape(self.note)}</i></p>")
        self.setHtml("".join(blocks))
        self.moveCursor(QTextCursor.End)  # the newest turn in view
        self.ensureCursorVisible()


class ChatBox(QWidget):
    """Type a message, Send: the model (and the base, side by side) answers through its chat template."""

    send_requested = Signal(list, list)  # the model's turns and the base's, each ending with the new message

    def __init__(self, parent=None):
        super().__init__(parent)
        self.system = QLineEdit()
        self.system.setPlaceholderText("System prompt (optional), e.g. 'You are a helpful assistant.'")
        self.system.setToolTip("Sent as the conversation's first, system turn, where the template has one; fixed once "
                               "the conversation starts (New chat to change it).")
        self.message = QLineEdit()
        self.message.setPlaceholderText("Your message; Enter sends it")
        self.message.returnPressed.connect(self._send)
        self.send = QPushButton("Send")
        self.send.setToolTip("Send the message; the reply ends at the model's end-of-turn token (or at Tokens)")
        self.send.clicked.connect(self._send)
        self.new_chat = QPushButton("New chat")
        self.new_chat.setToolTip("Forget the conversation and start again")
        self.new_chat.clicked.connect(self.reset)
        self.model_view = ChatTranscript("The conversation with the model chosen above appears here.")
        self.base_view = ChatTranscript("The same conversation with the base model appears here.")
        self.base_pane = _titled("Base (before fine-tuning)", self.base_view)
        self.base_pane.setVisible(False)
        self.model_pane = _titled("The model chosen above", self.model_view)
        self.model_pane.title.setVisible(False)  # a title only when there are two conversations to tell apart
        panes = QSplitter(Qt.Orientation.Horizontal)
        panes.addWidget(self.base_pane)
        panes.addWidget(self.model_pane)
        row = QHBoxLayout()
        row.addWidget(self.message, 1)
        row.addWidget(self.send)
        row.addWidget(self.new_chat)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.system)
        layout.addWidget(panes, 1)
        layout.addLayout(row)
        self.waiting: set[str] = set()
        self.epoch = 0  # which conversation: a reply to one forgotten by New chat is not shown in the next

    def set_compare(self, on: bool) -> None:
        self.base_pane.setVisible(on)
        self.model_pane.title.setVisible(on)

    def comparing(self) -> bool:
        return self.base_pane.isVisibleTo(self)

    def reset(self) -> None:
        """A new conversation in both panes (a reply still on its way is dropped when it lands)."""
        self.model_view.reset()
        self.base_view.reset()
        self.waiting.clear()
        self.epoch += 1
        self.send.setEnabled(True)
        self.system.setEnabled(True)

    def add_reply(self, which: str, text: str) -> None:
        """The reply of "model" or "base" to the last message."""
        if which in self.waiting:
            self.waiting.discard(which)
            self._view(which).add("assistant", text)
            self.send.setEnabled(not self.waiting)

    def stream_reply(self, which: str, piece: str) -> None:
        """A piece of the reply of "model" or "base" as it is generated."""
        if which in self.waiting:
            self._view(which).stream(piece)

    def reply_failed(self, which: str, message: str) -> None:
        """No reply from "model" or "base": say why under the conversation; the message stays to retry."""
        if which in self.waiting:
            self.waiting.discard(which)
            view = self._view(which)
            unanswered = view.turns.pop()["content"]
            view.partial = None
            view.set_note(message)
            if not self.message.text():
                self.message.setText(unanswered)
            self.send.setEnabled(not self.waiting)

    def _view(self, which: str) -> ChatTranscript:
        return self.base_view if which == "base" else self.model_view

    def _send(self) -> None:
        text = self.message.text().strip()
        if not text or self.waiting:
            return
        views = [("model", self.model_view)] + ([("base", self.base_view)] if self.comparing() else [])
        for which, view in views:
            if not view.turns and self.system.text().strip():
                view.add("system", self.system.text().strip())
            view.add("user", text)
            view.set_note("thinking…")
            self.waiting.add(which)
        self.system.setEnabled(False)
        self.send.setEnabled(False)
        self.message.clear()
        base = list(self.base_view.turns) if self.comparing() else []
        self.send_requested.emit(list(self.model_view.turns), base)


def _blank(text: str) -> str:
    """What an empty or blank turn holds, in words (it would otherwise show as nothing at all)."""
    if not text:
        return "an empty reply"
    lines = text.count("\n")
    return f"only white space: {lines} line break{'s' * (lines != 1)}" if lines else "only white space"


def _titled(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    box.title = QLabel(f"<i>{title}</i>")
    layout.addWidget(box.title)
    layout.addWidget(widget, 1)
    return box
