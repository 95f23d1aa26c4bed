"""The run's checkpoints: a table, and Save now / Resume / Open folder / Export / Delete."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QCursor, QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from autogpt_gui.engine.run.checkpoints import CheckpointFolder
from autogpt_gui.engine.run.layout import CHECKPOINTS, LAST
from autogpt_gui.estimates import human_bytes
from autogpt_gui.ui.widgets import read_only_table


class CheckpointsPanel(QWidget):
    """Lists checkpoints of the current run folder; asks the window to resume or export one."""

    save_requested = Signal()
    resume_requested = Signal(str)  # checkpoint path
    export_requested = Signal(str, str)  # checkpoint path, format ("hf", "gguf" or "native"); quant() for gguf
    branch_requested = Signal(str)  # checkpoint path: a new run from it with the form's settings
    sample_requested = Signal(str)  # checkpoint path: open the playground on it

    def __init__(self, parent=None):
        super().__init__(parent)
        self.folder: CheckpointFolder | None = None
        self.title = QLabel("No run yet: checkpoints appear here as the run saves them.")
        self.title.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # a long path never widens the window
        self.table = read_only_table(["Checkpoint", "Step", "Val loss", "Saved", "Size"])
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.save_btn = QPushButton("Save now")
        self.save_btn.setToolTip("Save a checkpoint of the running model now")
        self.resume_btn = QPushButton("Resume from selected")
        self.resume_btn.setToolTip("Continue training from the selected checkpoint, exactly where it was")
        self.branch_btn = QPushButton("Branch…")
        self.branch_btn.setToolTip("Start a new run from the selected checkpoint with the settings in the form "
                                   "(change the learning rate first, say); the new run remembers where it forked")
        self.open_btn = QPushButton("Open folder")
        self.open_btn.setToolTip("Show the checkpoint files in your file manager")
        self.export_btn = QPushButton("Export…")
        self.export_btn.setToolTip("Write a folder that Hugging Face tools load (transformers, vLLM), a GGUF file "
                                   "that llama.cpp, Ollama and LM Studio run, or our own safetensors + config + "
                                   "tokenizer")
        self.export_format = QComboBox()
        self.export_format.addItem("for Hugging Face", "hf")
        self.export_format.addItem("GGUF (llama.cpp, Ollama)", "gguf")
        self.export_format.addItem("native", "native")
        self.export_format.setToolTip("hf: config.json, model.safetensors, tokenizer.json and a model card; "
                                      "gguf: one .gguf file, checked by reading it back, with an Ollama Modelfile "
                                      "and a model card; native: what this app reads back")
        self.export_quant = QComboBox()
        for text, quant in (("f32", "f32"), ("f16", "f16"), ("bf16", "bf16"), ("q8_0 (8-bit)", "q8_0")):
            self.export_quant.addItem(text, quant)
        self.export_quant.setToolTip("GGUF: the type of the weight matrices (norms and biases stay f32); q8_0 is "
                                     "a quarter of f32's size, and keeps at f16 a matrix whose rows are not a "
                                     "multiple of 32")
        self.export_format.currentIndexChanged.connect(
            lambda: self.export_quant.setEnabled(self.export_format.currentData() == "gguf"))
        self.delete_btn = QPushButton("Delete")
        self.delete_btn.setToolTip("Delete the selected checkpoint file (asks first)")
        self.save_btn.clicked.connect(self.save_requested)
        self.resume_btn.clicked.connect(lambda: self.selected() and self.resume_requested.emit(self.selected()))
        self.export_btn.clicked.connect(lambda: self.selected() and self.export_requested.emit(
            self.selected(), self.export_format.currentData()))
        self.branch_btn.clicked.connect(lambda: self.selected() and self.branch_requested.emit(self.selected()))
        self.open_btn.clicked.connect(self._open_folder)
        self.delete_btn.clicked.connect(self._delete)
        row = QHBoxLayout()
        for b in (self.save_btn, self.resume_btn, self.branch_btn, self.open_btn, self.delete_btn):
            row.addWidget(b)
        row.addStretch(1)
        export_row = QHBoxLayout()  # a row of its own: beside the others it widened the window past 1280 px
        for b in (self.export_btn, self.export_format, self.export_quant):
            export_row.addWidget(b)
        export_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addLayout(export_row)
        self.export_quant.setEnabled(False)
        self.set_training(False)
        self._selection_changed()

    def set_folder(self, run_path: str | None) -> None:
        self.folder = CheckpointFolder(Path(run_path) / CHECKPOINTS) if run_path else None
        self.refresh()

    def set_training(self, running: bool) -> None:
        self.running = running
        self.save_btn.setEnabled(running)
        self._selection_changed()

    def refresh(self) -> None:
        rows = self.folder.list() if self.folder and self.folder.folder.exists() else []
        if self.folder:
            self.title.setText(f"Checkpoints in {self.folder.folder}  (★ = best validation loss)")
            self.title.setToolTip(str(self.folder.folder))
        self.table.setRowCount(len(rows))
        for i, c in enumerate(rows):
            name = Path(c.path).name + ("  ★" if c.is_best and Path(c.path).name != LAST else "")
            cells = [name, str(c.step), "" if c.val_loss is None else f"{c.val_loss:.4f}",
                     time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.time)), human_bytes(c.size)]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(256, c.path)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self._selection_changed()

    def quant(self) -> str:
        """The GGUF export's weight type (f32, f16, bf16 or q8_0)."""
        return self.export_quant.currentData()

    def selected(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(256) if items else None

    def select_row(self, name: str) -> None:
        for i in range(self.table.rowCount()):
            if self.table.item(i, 0).text().split()[0] == name:
                self.table.selectRow(i)

    def _selection_changed(self) -> None:
        has = self.selected() is not None
        self.resume_btn.setEnabled(has and not getattr(self, "running", False))
        self.branch_btn.setEnabled(has and not getattr(self, "running", False))
        self.export_btn.setEnabled(has)
        self.delete_btn.setEnabled(has and not getattr(self, "running", False))
        self.open_btn.setEnabled(self.folder is not None)

    def offer(self, path: str) -> QMenu:
        """What can be done with one checkpoint (a click on its marker on the loss chart): a menu at the cursor."""
        menu = self.menu = QMenu(self)
        name = Path(path).name
        for text, act in ((f"Sample from {name} in the playground", lambda: self.sample_requested.emit(path)),
                          (f"Export {name} for Hugging Face…", lambda: self.export_requested.emit(path, "hf")),
                          (f"Branch from {name} with the form's settings…", lambda: self.branch_requested.emit(path))):
            action = menu.addAction(text)
            action.triggered.connect(act)
            action.setEnabled(Path(path).exists() and (not self.running or text.startswith("Sample")))
        self.select_row(name)
        menu.popup(QCursor.pos())
        return menu

    def _open_folder(self) -> None:
        if self.folder:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder.folder)))

    def _delete(self) -> None:
        path = self.selected()
        if not path or not self.folder:
            return
        answer = QMessageBox.question(self, "Delete checkpoint", f"Delete {Path(path).name}? This cannot be undone.")
        if answer == QMessageBox.Yes:
            self.folder.delete(Path(path).name)
            self.refresh()
