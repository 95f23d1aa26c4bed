"""Steer a run while it trains: change settings at the next step, or extend a finished run.

The fields start from the run's configuration; Apply sends only what changed, after the same checks
the configuration gets (engine/train/edits.py: a NaN learning rate is refused here, at its field). What
was applied is the new baseline, so the panel always shows what the run trains with now.
"""
from __future__ import annotations

import copy

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget

from autogpt_gui.config import RunConfig
from autogpt_gui.engine.train.edits import checked
from autogpt_gui.errors import ConfigError
from autogpt_gui.settings import Setting, live_keys, setting
from autogpt_gui.ui.setting_editors import make_editor, read_editor, write_editor


def live_tip(desc: Setting) -> str:
    """The Steer tab's tooltip: what the setting does, what a live change does, and when it applies."""
    return " ".join(filter(None, (desc.tip, desc.live_note, f"A change applies at the {desc.applies}.")))


class LiveEditPanel(QWidget):
    """Edit a running run's settings (applied between two steps), and extend a finished one."""

    edit_requested = Signal(dict)  # {setting: value}, checked
    extend_requested = Signal(int)  # more steps for the run shown

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cfg = RunConfig()
        self.editors: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        form = QFormLayout()
        for key in live_keys():
            desc = setting(key)
            w = make_editor(desc)
            w.setToolTip(live_tip(desc))
            error = QLabel("")
            error.setObjectName("fieldError")
            error.setStyleSheet("color: #c0392b")
            error.setWordWrap(True)
            error.hide()
            box = QVBoxLayout()
            box.setSpacing(0)
            box.addWidget(w)
            box.addWidget(error)
            form.addRow(desc.label, box)
            self.editors[key], self.errors[key] = w, error
        self.apply = QPushButton("Apply at the next step")
        self.apply.setToolTip("Send the changed settings to the run; they take effect between two steps, are "
                              "marked on the loss chart and kept in its checkpoints.")
        self.apply.clicked.connect(self._apply)
        self.note = QLabel("Start a run to change its settings while it trains.")
        self.note.setWordWrap(True)
        self.extend_steps = QSpinBox()
        self.extend_steps.setRange(1, int(setting("train.max_steps").spin_range()[1]))  # as many as a run has
        self.extend_steps.setValue(1000)
        self.extend_steps.setToolTip("How many more steps to train.")
        self.extend = QPushButton("Extend run")
        self.extend.setToolTip("Continue this finished or stopped run for more steps: the learning rate goes on "
                               "from where it is (a cosine decays from there to min lr) instead of jumping.")
        self.extend.clicked.connect(lambda: self.extend_requested.emit(self.extend_steps.value()))
        row = QHBoxLayout()
        row.addWidget(self.apply)
        row.addStretch(1)
        row.addWidget(QLabel("Extend by"))
        row.addWidget(self.extend_steps)
        row.addWidget(QLabel("steps"))
        row.addWidget(self.extend)
        body = QWidget()
        body.setMaximumWidth(720)
        inner = QVBoxLayout(body)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addLayout(form)
        inner.addLayout(row)
        inner.addWidget(self.note)
        layout = QVBoxLayout(self)
        layout.addWidget(body)
        layout.addStretch(1)
        self.set_live(False)
        self.set_extendable(False)

    def load(self, cfg: RunConfig) -> None:
        """Show what a run trains with (its configuration, plus edits applied so far)."""
        self.cfg = copy.deepcopy(cfg)
        for key, w in self.editors.items():
            section, name = key.split(".")
            write_editor(w, getattr(getattr(self.cfg, section), name))
        self._show([])

    def set_live(self, live: bool, note: str = "") -> None:
        self.apply.setEnabled(live)
        self.note.setText(note or ("Changes apply between two steps." if live else
                                   "Start a run to change its settings while it trains."))

    def set_extendable(self, extendable: bool) -> None:
        self.extend.setEnabled(extendable)

    def changes(self) -> dict:
        """The fields whose value differs from the run's, as typed by the user (checked by _apply)."""
        out = {}
        for key, w in self.editors.items():
            section, name = key.split(".")
            now = getattr(getattr(self.cfg, section), name)
            value = read_editor(w)
            if isinstance(w, QLineEdit) and isinstance(now, float):
                try:
                    value = float(value)
                except ValueError:
                    pass  # checked() names the field
            if value != now:
                out[key] = value
        return out

    def _apply(self) -> None:
        changes = self.changes()
        if not changes:
            self._show([])
            self.note.setText("Nothing changed.")
            return
        try:
            self.cfg, values = checked(self.cfg, changes)
        except ConfigError as err:
            self._show(err.problems)
            return
        self._show([])
        self.note.setText("Sent: " + ", ".join(f"{k.split('.')[1]} = {v}" for k, v in values.items()))
        self.edit_requested.emit(values)

    def _show(self, problems: list[tuple[str, str]]) -> None:
        by_field: dict[str, list[str]] = {}
        for f, m in problems:
            by_field.setdefault(f, []).append(m)
        for key, label in self.errors.items():
            label.setText("\n".join(by_field.get(key, [])))
            label.setVisible(key in by_field)
