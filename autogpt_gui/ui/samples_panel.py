"""Samples at every evaluation, and a playground that generates from the live model or a checkpoint: text from a
prompt, or a chat through the model's template."""
from __future__ import annotations

import random

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from autogpt_gui.ui.chat_view import ChatBox


def _spin(cls, low, high, value, tip: str, step=None):
    """A spin box (int or float) with its range, value and tooltip."""
    box = cls()
    box.setRange(low, high)
    if step is not None:
        box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box


class SamplesPanel(QWidget):
    """Left: the samples the run wrote, newest first. Right: prompt, settings, Generate."""

    generate_requested = Signal(dict)  # prompt, max_new_tokens, temperature, top_k, top_p, source
    chat_requested = Signal(dict)  # turns, base_turns, compare, max_new_tokens, temperature, seed, source

    def __init__(self, parent=None):
        super().__init__(parent)
        self.history = QTextEdit()
        self.history.setReadOnly(True)
        self.history.setPlaceholderText("A sample appears at each evaluation: watch it improve.")
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Prompt, e.g. 'The ' or 'def '")
        self.prompt.setMaximumHeight(70)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("Generated text streams in here.")
        self.temperature = _spin(QDoubleSpinBox, 0.0, 3.0, 0.8, "Higher is more adventurous; 0 always picks the "
                                 "likeliest token.", step=0.1)
        self.top_k = _spin(QSpinBox, 0, 100000, 50, "Sample only among the k likeliest tokens (0 = all).")
        self.top_p = _spin(QDoubleSpinBox, 0.0, 1.0, 1.0, "Nucleus sampling: the smallest set of tokens holding this "
                           "much probability.", step=0.05)
        self.max_tokens = _spin(QSpinBox, 1, 100000, 300, "How many new tokens to generate.")
        self.source = QComboBox()
        self.source.setToolTip("Generate from the model being trained (between steps), from a saved checkpoint, "
                               "or from the pretrained model of 'Start from' as it was before fine-tuning.")
        self.source.addItem("Live model (while training)", "live")
        self.source.addItem("A checkpoint file…", "file")
        self.source.addItem("The checkpoint chosen on the chart", "checkpoint")
        self.source.addItem("The pretrained model it starts from", "base")
        self.compare = QCheckBox("Side by side with the base model")
        self.compare.setToolTip("Generate from the pretrained model of 'Start from' as well, with the same prompt, "
                                "settings and random seed, so the difference is what fine-tuning changed.")
        self.compare.setEnabled(False)
        self.compare.toggled.connect(self._show_compare)
        self.mode = QComboBox()
        self.mode.addItem("Text: continue a prompt", "text")
        self.mode.addItem("Chat: a conversation through the template", "chat")
        self.mode.setToolTip("Text continues the prompt as it is. Chat sends your messages through the model's chat "
                             "template, turn by turn, and each reply ends at the end-of-turn token.")
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.chat = ChatBox()
        self.chat.send_requested.connect(self._chat)
        self.base_output = QPlainTextEdit()
        self.base_output.setReadOnly(True)
        self.base_output.setPlaceholderText("The base model's text streams in here.")
        self.generate = QPushButton("Generate")
        self.generate.setToolTip("Generate text from the prompt (Ctrl+G)")
        self.generate.setShortcut("Ctrl+G")
        self.generate.clicked.connect(self._generate)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Mode", self.mode)
        form.addRow("Model", self.source)
        row = QHBoxLayout()
        for label, w in (("Temp", self.temperature), ("Top-k", self.top_k), ("Top-p", self.top_p),
                         ("Tokens", self.max_tokens)):
            row.addWidget(QLabel(label))
            row.addWidget(w)
        form.addRow(row)
        form.addRow(self.compare)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(QLabel("<b>Playground</b>"))
        rv.addWidget(self.prompt)
        rv.addLayout(form)
        gen_row = QHBoxLayout()
        gen_row.addWidget(self.generate)
        gen_row.addWidget(self.note, 1)
        rv.addLayout(gen_row)
        self.base_pane = _titled("Base (before fine-tuning)", self.base_output)
        self.base_pane.setVisible(False)
        outputs = QSplitter(Qt.Orientation.Horizontal)
        outputs.addWidget(self.base_pane)
        outputs.addWidget(_titled("The model chosen above", self.output))
        self.pages = QStackedWidget()
        self.pages.addWidget(outputs)
        self.pages.addWidget(self.chat)
        rv.addWidget(self.pages, 1)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("<b>Samples during training</b>"))
        lv.addWidget(self.history)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([500, 500])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self.checkpoint_path: str | None = None

    def clear_samples(self) -> None:
        self.history.clear()

    def add_sample(self, sample: dict) -> None:
        """Prepend a sample with its step (plain text, so model output never renders as HTML)."""
        cursor = self.history.textCursor()
        cursor.movePosition(QTextCursor.Start)
        self.history.setTextCursor(cursor)
        cursor.insertHtml(f"<b>step {sample['step']}</b><br>")
        cursor.insertText(sample["prompt"] + sample["text"] + "\n\n")
        self.history.moveCursor(QTextCursor.Start)

    def set_checkpoint(self, path: str | None) -> None:
        self.checkpoint_path = path

    def use_checkpoint(self, path: str) -> None:
        """Generate from this checkpoint next (chosen elsewhere: a click on its marker)."""
        self.checkpoint_path = path
        self.source.setCurrentIndex(self.source.findData("checkpoint"))
        self.note.setText(f"Model: {path}")

    def _choose_file(self) -> bool:
        """For the "checkpoint file" model: ask which (False when the user cancels)."""
        if self.source.currentData() != "file":
            return True
        path, _ = QFileDialog.getOpenFileName(self, "Choose a checkpoint", self.checkpoint_path or "",
                                              "Checkpoints (*.pt);;All files (*)")
        if path:
            self.checkpoint_path = path
        return bool(path)

    def _generate(self) -> None:
        source = self.source.currentData()
        if not self._choose_file():
            return
        self.output.setPlainText(self.prompt.toPlainText())
        compare = self.compare.isEnabled() and self.compare.isChecked()
        if compare:
            self.base_output.setPlainText(self.prompt.toPlainText())
        self.generate_requested.emit({
            "compare": compare, "seed": random.randrange(2**31),
            "prompt": self.prompt.toPlainText(), "max_new_tokens": self.max_tokens.value(),
            "temperature": self.temperature.value(), "top_k": self.top_k.value() or None,
            "top_p": self.top_p.value() if self.top_p.value() < 1.0 else None,
            "source": source, "checkpoint": self.checkpoint_path})

    def _chat(self, turns: list, base_turns: list) -> None:
        first = sum(t["role"] == "user" for t in turns) == 1  # the file is asked for once a conversation
        if (first or not self.checkpoint_path) and not self._choose_file():
            self.chat.reply_failed("model", "No checkpoint chosen.")
            self.chat.reply_failed("base", "No checkpoint chosen.")
            return
        self.chat_requested.emit({
            "turns": turns, "base_turns": base_turns, "compare": bool(base_turns), "seed": random.randrange(2**31),
            "max_new_tokens": self.max_tokens.value(), "temperature": self.temperature.value(),
            "source": self.source.currentData(), "checkpoint": self.checkpoint_path})

    def chat_mode(self) -> bool:
        return self.mode.currentData() == "chat"

    def _mode_changed(self) -> None:
        chat = self.chat_mode()
        self.pages.setCurrentIndex(1 if chat else 0)
        self.generate.setVisible(not chat)
        self.prompt.setVisible(not chat)
        for box in (self.top_k, self.top_p):
            box.setEnabled(not chat)
            box.setToolTip(box.toolTip().split(" (Text mode")[0] + (" (Text mode only: a chat reply samples by "
                                                                    "temperature alone.)" if chat else ""))

    def _show_compare(self, on: bool) -> None:
        self.base_pane.setVisible(on)
        self.chat.set_compare(on)

    def set_base(self, init: str) -> None:
        """The pretrained model the run starts from ('' for none): only then is there a base to compare with."""
        self.compare.setEnabled(bool(init))
        self._show_compare(bool(init) and self.compare.isChecked())

    def append_base_text(self, text: str) -> None:
        self.base_output.moveCursor(QTextCursor.End)
        self.base_output.insertPlainText(text)

    def append_text(self, text: str) -> None:
        self.output.moveCursor(QTextCursor.End)
        self.output.insertPlainText(text)

    def set_busy(self, busy: bool, note: str = "") -> None:
        self.generate.setEnabled(not busy)
        self.note.setText(note)


def _titled(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    if title:
        layout.addWidget(QLabel(f"<i>{title}</i>"))
    layout.addWidget(widget, 1)
    return box
