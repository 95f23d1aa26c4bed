"""The learning-rate finder's window: loss against learning rate (log x) filling in as the sweep runs,
the suggested rate marked, and one click to put it into the form."""
from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout


class LRFinderDialog(QDialog):
    """Shows a sweep (engine/lr_finder.py) as it runs; `use` carries the rate the user accepted."""

    use = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Find a learning rate")
        self.resize(640, 420)
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.suggestion: float | None = None
        self.plot = pg.PlotWidget()
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "learning rate")
        self.plot.setLabel("left", "smoothed loss")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.curve = self.plot.plot(pen=pg.mkPen((40, 110, 230), width=2))
        self.mark = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((240, 120, 30), width=2,
                                                                          style=Qt.PenStyle.DashLine))
        self.mark.hide()
        self.plot.addItem(self.mark, ignoreBounds=True)
        self.note = QLabel("Sweeping the learning rate from 1e-6 upward on a fresh copy of the model…")
        self.note.setWordWrap(True)
        self.accept_btn = QPushButton("Use it")
        self.accept_btn.setEnabled(False)
        self.accept_btn.setToolTip("Put the suggested learning rate (and a tenth of it as min lr) into the form.")
        self.accept_btn.clicked.connect(self._use)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.accept_btn)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.note)
        layout.addLayout(row)

    def show_progress(self, lr_text: str, loss: float) -> None:
        self.lrs.append(float(lr_text))
        self.losses.append(loss)
        self.curve.setData(self.lrs, self.losses)

    def show_result(self, result: dict) -> None:
        self.lrs, self.losses = result["lrs"], result["smoothed"]
        self.curve.setData(self.lrs, self.losses)
        self.suggestion = result["suggestion"]
        self.note.setText(result["text"][:1].upper() + result["text"][1:] + ".")
        if self.suggestion is not None:
            self.mark.setPos(math.log10(self.suggestion))  # the axis is log10 of the rate
            self.mark.show()
            self.accept_btn.setText(f"Use {self.suggestion:.1e}")
            self.accept_btn.setEnabled(True)

    def failed(self, message: str) -> None:
        self.note.setText(f"The sweep could not run: {message}")

    def _use(self) -> None:
        if self.suggestion is not None:
            self.use.emit(self.suggestion)
            self.accept()
