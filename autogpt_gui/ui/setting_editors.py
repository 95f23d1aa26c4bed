"""One editor widget per setting, drawn from its description (autogpt_gui/settings.py).

The form and the Steer tab both build their fields here, so a label, tooltip, range or list of
choices is never written twice.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from autogpt_gui.settings import Setting

DECIMALS = 4  # a float spin box's digits after the point


class PathEditor(QWidget):
    """A line for a file, folder or hub id, with a Browse button beside it."""

    def __init__(self, placeholder: str, parent=None):
        super().__init__(parent)
        h = QHBoxLayout(self)
        h.setContentsMargins(0, 0, 0, 0)
        self.line = QLineEdit()
        self.line.setPlaceholderText(placeholder)
        self.browse = QPushButton("Browse…")
        self.browse.setObjectName("browse")
        h.addWidget(self.line, 1)
        h.addWidget(self.browse)


def make_editor(desc: Setting, placeholder: str = "choose a file or folder") -> QWidget:
    """The widget that edits desc: its range, step and choices from the description, named by its key."""
    w: QWidget
    if desc.kind == "int":
        spin = QSpinBox()
        low, high = desc.spin_range()
        spin.setRange(int(low), int(high))
        spin.setKeyboardTracking(False)
        w = spin
    elif desc.kind == "float":
        double = QDoubleSpinBox()
        double.setRange(*desc.spin_range())
        double.setSingleStep(desc.step)
        double.setDecimals(DECIMALS)
        double.setKeyboardTracking(False)
        w = double
    elif desc.kind == "bool":
        w = QCheckBox()
    elif desc.kind == "choice":
        combo = QComboBox()
        for value, text in desc.choices:
            combo.addItem(text, value)
        w = combo
    elif desc.kind == "path":
        w = PathEditor(placeholder)
    else:  # sci and text: free text, parsed on read
        w = QLineEdit()
    w.setObjectName(desc.key)
    return w


def on_edit(w: QWidget, callback: Callable[[], None]) -> None:
    """Call callback once the user has finished changing w's value."""
    if isinstance(w, (QSpinBox, QDoubleSpinBox)):
        w.valueChanged.connect(lambda _=None: callback())
    elif isinstance(w, QCheckBox):
        w.toggled.connect(lambda _=None: callback())
    elif isinstance(w, QComboBox):
        w.currentIndexChanged.connect(lambda _=None: callback())
    elif isinstance(w, PathEditor):
        w.line.editingFinished.connect(callback)
    elif isinstance(w, QLineEdit):
        w.editingFinished.connect(callback)


def read_editor(w: QWidget):
    """The value w shows: a number, a bool, a choice's value or the text (stripped)."""
    if isinstance(w, (QSpinBox, QDoubleSpinBox)):
        return w.value()
    if isinstance(w, QCheckBox):
        return w.isChecked()
    if isinstance(w, QComboBox):
        return w.currentData()
    if isinstance(w, PathEditor):
        return w.line.text().strip()
    assert isinstance(w, QLineEdit)
    return w.text().strip()


def write_editor(w: QWidget, value) -> None:
    """Show value in w; a combo offers a value it lacks (from a loaded file) rather than hiding it."""
    if isinstance(w, (QSpinBox, QDoubleSpinBox)):
        w.setValue(value)
    elif isinstance(w, QCheckBox):
        w.setChecked(bool(value))
    elif isinstance(w, QComboBox):
        i = w.findData(value)
        if i < 0:
            w.addItem(str(value), value)
            i = w.count() - 1
        w.setCurrentIndex(i)
    elif isinstance(w, PathEditor):
        w.line.setText(str(value))
    elif isinstance(w, QLineEdit):
        w.setText(f"{value:g}" if isinstance(value, float) else str(value))
