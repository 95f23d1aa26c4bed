"""Data preview: the source's size and first lines; tokenizing with progress, cancel, and token boundaries; for a
chat source, the conversations as the model sees them (the mask preview)."""
from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from autogpt_gui.estimates import human_bytes
from autogpt_gui.ui.mask_preview import MaskPreview

TOKEN_COLORS = ["rgba(66,135,245,0.28)", "rgba(245,166,35,0.30)"]


class DataPanel(QWidget):
    """Shows what the model will read. The window runs the jobs; this panel asks and displays."""

    tokenize_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.info = QLabel("Choose a data source in the configuration to preview it here.")
        self.info.setWordWrap(True)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setPlaceholderText("The first lines of the source")
        self.tokens = QTextEdit()
        self.tokens.setReadOnly(True)
        self.tokens.setPlaceholderText("After tokenizing: a few lines with each token shaded, so you can see how "
                                       "the text is cut up.")
        self.tokenize = QPushButton("Tokenize")
        self.tokenize.setToolTip("Tokenize the source now (cached; Start also does it)")
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("")
        self.tokenize.clicked.connect(self.tokenize_requested)
        self.cancel.clicked.connect(self.cancel_requested)
        row = QHBoxLayout()
        row.addWidget(self.tokenize)
        row.addWidget(self.cancel)
        row.addWidget(self.progress, 1)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.masks = MaskPreview()
        self.masks.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addWidget(self.preview, 2)
        layout.addLayout(row)
        layout.addWidget(self.result)
        layout.addWidget(self.tokens, 2)
        layout.addWidget(self.masks, 3)

    def set_chat(self, chat: bool) -> None:
        """A chat source shows its conversations token by token with their mask instead of shaded lines."""
        self.tokens.setVisible(not chat)
        self.masks.setVisible(chat)
        self.layout().setStretchFactor(self.preview, 1 if chat else 2)  # the mask matters more than the raw lines
        self.tokenize.setToolTip("Tokenize the conversations now and show which tokens train (cached; Start "
                                 "also does it)" if chat else "Tokenize the source now (cached; Start also does it)")

    def show_preview(self, info: dict) -> None:
        self.info.setText(f"<b>{html.escape(info['label'])}</b> · {human_bytes(info['size'])}")
        if info.get("conversations") is not None:
            self.info.setText(self.info.text() + f" · {info['conversations']:,} conversations, "
                                                 f"{info['turns']:,} turns")
        self.preview.setPlainText(info["preview"])
        self.tokens.clear()
        self.masks.clear()
        self.result.setText("")

    def show_error(self, message: str) -> None:
        self.info.setText(f"<span style='color:#d9534f'><b>Cannot use this source:</b> {html.escape(message)}</span>")
        self.preview.clear()
        self.masks.clear()
        self.result.setText("")
        self.set_busy(False)

    def set_busy(self, busy: bool) -> None:
        self.tokenize.setEnabled(not busy)
        self.cancel.setEnabled(busy)
        if not busy:
            self.progress.setFormat("")

    def show_progress(self, phase: str, fraction: float) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{phase} {fraction * 100:.0f}%")

    def show_tokens(self, info: dict) -> None:
        self.set_busy(False)
        self.progress.setValue(1000)
        cached = " (from the cache)" if info["from_cache"] else ""
        if info.get("masks"):
            self.result.setText(f"Tokenized through the chat template: vocabulary <b>{info['vocab_size']}</b>{cached}")
            self.masks.show_masks(info["masks"])
            return
        self.result.setText(f"<b>{info['train_tokens']:,}</b> training tokens, <b>{info['val_tokens']:,}</b> "
                            f"validation tokens, vocabulary <b>{info['vocab_size']}</b>{cached}")
        lines = []
        for line in info["tokenized"]:
            spans = [f"<span style='background:{TOKEN_COLORS[i % 2]}'>{html.escape(t).replace(' ', '&nbsp;')}</span>"
                     for i, t in enumerate(line)]
            lines.append("".join(spans))
        self.tokens.setHtml("<div style='font-family:monospace'>" + "<br>".join(lines) + "</div>")
