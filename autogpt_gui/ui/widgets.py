"""Small widgets shared by the panels: a non-modal banner and a read-only table."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QFrame, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget


def read_only_table(headers: list[str]) -> QTableWidget:
    """Rows selected whole, one at a time, not editable; the first column takes the spare width."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
    table.setSelectionBehavior(QAbstractItemView.SelectRows)
    table.setSelectionMode(QAbstractItemView.SingleSelection)
    table.setEditTriggers(QAbstractItemView.NoEditTriggers)
    table.verticalHeader().hide()
    return table


class Banner(QFrame):
    """A message across the top of the window with up to two buttons; never modal."""

    def __init__(self, object_name: str):
        super().__init__()
        self.setObjectName(object_name)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.action = QPushButton()
        self.dismiss = QPushButton("Dismiss")
        self.dismiss.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.addWidget(self.label, 1)
        row.addWidget(self.action)
        row.addWidget(self.dismiss)
        self.hide()

    def show_message(self, text: str, action: str | None = None) -> None:
        self.label.setText(text)
        self.action.setVisible(action is not None)
        if action:
            self.action.setText(action)
        self.show()
