"""The configuration form: model, data, optimizer and training settings, with live estimates.

Drawn from the settings' descriptions (autogpt_gui/settings.py), so every setting has its label, its
tooltip and a place to show the engine's own validation message.
"""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from autogpt_gui.config import RunConfig, apply_preset, set_field
from autogpt_gui.estimates import memory_problems, system_memory
from autogpt_gui.settings import GROUPS, SETTINGS, Setting, applies_to, form_settings
from autogpt_gui.ui.form_summary import summary_html
from autogpt_gui.ui.pretrained_choice import LOCKED, LORA_KEYS, automatic_text, take_pretrained
from autogpt_gui.ui.setting_editors import PathEditor, make_editor, on_edit, read_editor, write_editor

# a change to one of these makes the preset "custom"
SHAPE_KEYS = ("model.n_layer", "model.n_head", "model.n_embd", "model.block_size", "model.arch", "model.n_kv_head",
              "model.head_dim", "model.intermediate_size", "model.rope_theta", "model.qk_norm",
              "model.tie_word_embeddings")


class ConfigPanel(QScrollArea):
    """Edits a RunConfig. Emits changed(RunConfig) after every edit."""

    changed = Signal(object)
    find_lr_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # never narrower than its rows: see below
        body = QWidget()
        layout = QVBoxLayout(body)
        self.editors: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        self.rows: dict[str, tuple[QFormLayout, QWidget]] = {}
        self._loading = False
        self._vocab: int | None = None
        self._device_memory: dict[str, tuple[int | None, str]] = {}
        self._corpus_tokens: int | None = None
        self._parse_problems: list[tuple[str, str]] = []
        self.summary = QLabel()
        self.summary.setObjectName("estimates")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.summary)
        for section, title in GROUPS.items():
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
            for desc in form_settings(section):
                self._add_row(form, desc)
            layout.addWidget(box)
        layout.addStretch(1)
        self.setWidget(body)
        self.set_config(RunConfig.recommended())

    def _add_row(self, form: QFormLayout, desc: Setting) -> None:
        """The setting's label, its editor and (hidden until there is one) its error message."""
        key = desc.key
        editor = make_editor(desc, "from scratch" if key == "model.init" else "choose a file or folder")
        editor.setToolTip(desc.tip)
        on_edit(editor, lambda k=key: self._edited(k))
        if isinstance(editor, PathEditor):
            editor.browse.clicked.connect(lambda _=False, k=key: self._browse(k))
        error = QLabel()
        error.setObjectName("fieldError")
        error.setWordWrap(True)
        error.hide()
        cell = QWidget()
        v = QVBoxLayout(cell)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(1)
        if key == "optim.lr":  # the learning-rate finder sits beside the field it fills
            row = QHBoxLayout()
            row.addWidget(editor, 1)
            self.find_lr = QPushButton("Find…")
            self.find_lr.setToolTip("Sweep the learning rate on a copy of this model for ~100 steps and "
                                    "suggest one (plotted: loss against learning rate).")
            self.find_lr.clicked.connect(self.find_lr_requested)
            row.addWidget(self.find_lr)
            v.addLayout(row)
        else:
            v.addWidget(editor)
        v.addWidget(error)
        name = QLabel(desc.label)
        name.setToolTip(desc.tip)
        form.addRow(name, cell)
        self.editors[key], self.errors[key] = editor, error
        self.rows[key] = (form, cell)

    # ---- editors --------------------------------------------------------------------------
    def minimumSizeHint(self) -> QSize:  # the widest row fits beside the scroll bar, so nothing is cut off
        extra = self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        return QSize(self.widget().minimumSizeHint().width() + extra, 200)

    def _browse(self, key: str = "data.path") -> None:
        if key == "model.init":
            path = QFileDialog.getExistingDirectory(self, "Choose a Hugging Face GPT-2 folder (with config.json)")
        else:
            source = self.editors["data.source"].currentData()
            if source == "folder":
                path = QFileDialog.getExistingDirectory(self, "Choose a folder of text files")
            else:
                jsonl = source in ("jsonl", "chat")
                flt = "JSON lines (*.jsonl *.json);;All files (*)" if jsonl else "Text (*.txt *.md *.py);;All files (*)"
                title = "Choose a JSONL file of conversations" if source == "chat" else "Choose the training text"
                path, _ = QFileDialog.getOpenFileName(self, title, "", flt)
        if path:
            self.editors[key].line.setText(path)
            self._edited(key)

    def _read(self, key: str):
        w = self.editors[key]
        value = read_editor(w)
        if type(w) is not QLineEdit:
            return value
        if key == "train.sample_prompt":
            return value.replace("\\n", "\n")
        try:
            return float(value)
        except ValueError:
            return value  # set_field reports it as "not a valid float"

    def _write(self, key: str, value) -> None:
        if key == "train.sample_prompt":  # a newline shows as \n on the form's one line
            value = value.replace("\n", "\\n")
        write_editor(self.editors[key], value)

    # ---- API ---------------------------------------------------------------------------------
    def set_config(self, cfg: RunConfig) -> None:
        self._loading = True
        self._cfg = cfg
        for key in self.editors:
            section, name = key.split(".")
            self._write(key, getattr(getattr(cfg, section), name))
        self._loading = False
        self._refresh()

    def config(self) -> RunConfig:
        """The form's configuration; values the form cannot parse are reported by problems()."""
        return self._cfg

    def set_devices(self, devices: list[tuple[str, str, int | None]]) -> None:
        """The devices torch found: (value, description, memory in bytes); memory bounds what Start allows."""
        combo = self.editors["train.device"]
        current = combo.currentData()
        self._loading = True
        combo.clear()
        self._device_memory = {value: (memory, text) for value, text, memory in devices}
        for value, text, _memory in devices:
            combo.addItem(text, value)
        self._loading = False
        self._write("train.device", current)

    def set_data_info(self, vocab_size: int | None, corpus_tokens: int | None) -> None:
        self._vocab, self._corpus_tokens = vocab_size, corpus_tokens
        self._refresh()

    def show_problems(self, problems: list[tuple[str, str]]) -> None:
        """Mark each field at fault with the engine's message; clear the others."""
        by_field: dict[str, list[str]] = {}
        for f, m in problems:
            by_field.setdefault(f, []).append(m)
        for key, label in self.errors.items():
            msgs = by_field.get(key)
            label.setText("\n".join(msgs or []))
            label.setVisible(bool(msgs))
            self.editors[key].setProperty("invalid", bool(msgs))
            self.editors[key].style().unpolish(self.editors[key])
            self.editors[key].style().polish(self.editors[key])

    # ---- internals ---------------------------------------------------------------------------
    def _edited(self, key: str) -> None:
        if self._loading:
            return
        section, name = key.split(".")
        self._parse_problems = []
        cfg = self._cfg
        try:
            value = self._read(key)
            if key == "model.preset" and value != "custom":
                cfg.model = apply_preset(cfg.model, value, [])
                self.set_config(cfg)
            else:
                setattr(cfg, section, set_field(getattr(cfg, section), section, name, value))
                if key == "model.init":
                    take_pretrained(cfg)
                    self.set_config(cfg)
                if key in SHAPE_KEYS:
                    self._loading = True
                    cfg.model.preset = "custom"
                    self._write("model.preset", "custom")
                    self._loading = False
        except Exception as err:  # ConfigError: the text could not be parsed
            self._parse_problems = getattr(err, "problems", [(key, str(err))])
        if section == "data":
            self._vocab = self._corpus_tokens = None
        self._refresh()
        self.changed.emit(cfg)

    def problems(self) -> list[tuple[str, str]]:
        """The form's problems: what validate() finds, then whether training fits the chosen device's memory."""
        found = list(self._parse_problems) + self._cfg.validate()
        if not found:
            memory, where = self._device_memory.get(self._cfg.train.device, (None, ""))
            if memory is None:  # devices not probed yet: this computer's memory bounds a CPU run
                memory, where = system_memory(), "this computer"
            found += memory_problems(self._cfg, memory, where if self._cfg.train.device != "auto" else
                                     "the chosen device", self._vocab)
        return found

    def set_lr(self, lr: float) -> None:
        """Take a learning rate (the finder's suggestion), with a tenth of it as the schedule's floor; Muon's
        rate keeps its ratio to it (the finder swept both so)."""
        cfg = self._cfg
        muon_lr = float(f"{lr * cfg.optim.muon_lr / cfg.optim.lr:.2g}") if cfg.optim.name == "muon" else cfg.optim.muon_lr
        cfg.optim = replace(cfg.optim, lr=float(f"{lr:.2g}"), min_lr=float(f"{lr / 10:.2g}"), muon_lr=muon_lr)
        self.set_config(cfg)
        self.changed.emit(cfg)

    def _refresh(self) -> None:
        cfg = self._cfg
        pretrained = bool(cfg.model.init)
        for key in LOCKED:
            self.editors[key].setEnabled(not pretrained)
        tokenizer = self.editors["data.tokenizer"]
        assert isinstance(tokenizer, QComboBox)
        tokenizer.setItemText(tokenizer.findData("auto"), automatic_text(cfg))
        source = cfg.data.source
        self.editors["data.path"].setEnabled(source in ("file", "folder", "jsonl", "chat"))
        for key in ("data.chat_template", "data.train_on"):
            self.editors[key].setEnabled(source == "chat")
        self.editors["data.bpe_vocab_size"].setEnabled(cfg.data.tokenizer == "bpe")
        self.editors["data.task_digits"].setEnabled(source == "task:addition")
        self.editors["data.text_field"].setEnabled(source == "jsonl")
        self.editors["optim.decay_fraction"].setEnabled(cfg.optim.schedule == "wsd")
        self.editors["train.max_steps"].setEnabled(cfg.train.epochs == 0)
        for key, (form, cell) in self.rows.items():  # the other block kind's fields are hidden
            form.setRowVisible(cell, applies_to(SETTINGS[key], cfg.model.arch))
        self.editors["model.finetune"].setEnabled(pretrained)
        form, cell = self.rows["model.finetune"]
        form.setRowVisible(cell, pretrained)  # fine-tuning settings appear once there is a model to fine-tune
        for key in LORA_KEYS:
            self.editors[key].setEnabled(pretrained and cfg.model.finetune == "lora")
            form, cell = self.rows[key]
            form.setRowVisible(cell, pretrained and cfg.model.finetune == "lora")
        self.summary.setText(summary_html(cfg, self._vocab, self._corpus_tokens))
