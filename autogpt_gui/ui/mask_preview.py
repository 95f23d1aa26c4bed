"""The chat mask preview: a conversation as the model reads it, trained tokens highlighted, masked ones dimmed."""
from __future__ import annotations

import html

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTextEdit, QVBoxLayout, QWidget

TRAINED_COLORS = ("rgba(46,160,67,0.30)", "rgba(46,160,67,0.55)")  # alternate, so token boundaries show
MASKED_COLORS = ("rgba(128,128,128,0.10)", "rgba(128,128,128,0.22)")
MASKED_TEXT = "#8a8a8a"


def token_html(text: str, trained: bool, parity: int) -> str:
    """One token as a shaded span; a newline shows as ↵ and breaks the line, spaces stay visible."""
    shown = html.escape(text).replace(" ", "&nbsp;").replace("\t", "&nbsp;&nbsp;&nbsp;&nbsp;")
    shown = shown.replace("\r", "").replace("\n", "↵<br>")
    if trained:
        return f"<span style='background:{TRAINED_COLORS[parity]}'>{shown}</span>"
    return f"<span style='background:{MASKED_COLORS[parity]};color:{MASKED_TEXT}'>{shown}</span>"


def conversation_html(tokens: list) -> str:
    """A conversation's (text, trained) tokens as HTML in a monospace block."""
    spans = [token_html(text, bool(trained), i % 2) for i, (text, trained) in enumerate(tokens)]
    return "<div style='font-family:monospace;line-height:140%'>" + "".join(spans) + "</div>"


def _counts(c: dict) -> str:
    share = f" ({c['trained_tokens'] / c['tokens'] * 100:.0f} %)" if c["tokens"] else ""
    text = (f"<b>{c['conversations']:,}</b> conversation{'s' * (c['conversations'] != 1)}, "
            f"<b>{c['turns']:,}</b> turn{'s' * (c['turns'] != 1)}, "
            f"<b>{c['trained_tokens']:,}</b> trained tokens of <b>{c['tokens']:,}</b>{share}")
    extra = [f"{c[key]:,} {what}" for key, what in (("split", "split at turn boundaries"),
                                                    ("truncated", "truncated to the context"),
                                                    ("dropped", "pieces with no reply left out")) if c.get(key)]
    return text + ("; " + ", ".join(extra) if extra else "")


def counts_lines(info: dict) -> tuple[str, str, str]:
    """What trains, what is held out (conversations, turns, trained tokens of all tokens, as `train` says them),
    and the settings that decided it."""
    held_out = f"Held out to validate: {_counts(info['held_out'])}" if info.get("held_out") else ""
    settings = [f"train on: {html.escape(info['train_on'])}" if info.get("train_on") else "",
                f"template: {html.escape(info['template'])}" if info.get("template") else "",
                f"end of turn: {html.escape(info['end_of_turn'])}" if info.get("end_of_turn") else ""]
    return (f"Training: {_counts(info)}", held_out,
            "<span style='color:#6c757d'>" + " · ".join(s for s in settings if s) + "</span>")


class MaskPreview(QWidget):
    """Steps through the first conversations of a chat source as the model sees them, with the mask's counts."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.examples: list[dict] = []
        self.index = 0
        self.counts, self.held_out, self.settings = QLabel(""), QLabel(""), QLabel("")
        for label in (self.counts, self.held_out, self.settings):
            label.setWordWrap(True)
        self.legend = QLabel(f"<span style='background:{TRAINED_COLORS[1]}'>&nbsp;trained&nbsp;</span>&nbsp; "
                             f"<span style='background:{MASKED_COLORS[1]};color:{MASKED_TEXT}'>&nbsp;masked: read, "
                             "not learned&nbsp;</span>")
        self.legend.setToolTip("The loss is taken on the highlighted tokens only (data.train_on); the dimmed ones "
                               "are context the model reads but is not taught to write.")
        self.prev = QPushButton("◀ Previous")
        self.next = QPushButton("Next ▶")
        self.prev.setToolTip("The conversation before this one")
        self.next.setToolTip("The next conversation")
        self.position = QLabel("")
        self.prev.clicked.connect(lambda: self.step(-1))
        self.next.clicked.connect(lambda: self.step(1))
        self.view = QTextEdit()
        self.view.setReadOnly(True)
        self.view.setPlaceholderText("After tokenizing: a conversation rendered through the chat template, token "
                                     "by token.")
        row = QHBoxLayout()
        row.addWidget(self.prev)
        row.addWidget(self.next)
        row.addWidget(self.position, 1)
        row.addWidget(self.legend)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for label in (self.counts, self.held_out, self.settings):
            layout.addWidget(label)
        layout.addLayout(row)
        layout.addWidget(self.view, 1)
        self._update_buttons()

    def show_masks(self, info: dict) -> None:
        """info: the training counts (conversations, turns, trained_tokens, tokens, split, ...), held_out (the same
        for validation), and examples [{where, tokens: [[text, 0|1]]}] in the file's order."""
        self.examples = list(info.get("examples", []))
        self.total = info["conversations"] + info.get("held_out", {}).get("conversations", 0)
        for label, text in zip((self.counts, self.held_out, self.settings), counts_lines(info)):
            label.setText(text)
            label.setVisible(bool(text))
        self.index = 0
        self._show()

    def clear(self) -> None:
        self.examples, self.index = [], 0
        for label in (self.counts, self.held_out, self.settings):
            label.setText("")
        self.view.clear()
        self._update_buttons()

    def step(self, delta: int) -> None:
        """Show the conversation delta places on (within the ones previewed)."""
        if self.examples:
            self.index = max(0, min(len(self.examples) - 1, self.index + delta))
            self._show()

    def _show(self) -> None:
        if not self.examples:
            self.view.clear()
            self._update_buttons()
            return
        example = self.examples[self.index]
        self.view.setHtml(conversation_html(example["tokens"]))
        trained = sum(1 for _, t in example["tokens"] if t)
        shown = len(self.examples)
        of = f"{shown}" if shown == self.total else f"{shown} previewed of {self.total:,}"
        self.position.setText(f"Conversation {self.index + 1} of {of} · {html.escape(example['where'])} · "
                              f"{trained} of {len(example['tokens'])} tokens trained")
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.prev.setEnabled(self.index > 0)
        self.next.setEnabled(self.index < len(self.examples) - 1)
