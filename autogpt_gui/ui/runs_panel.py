"""Past runs: name, date, steps, best validation loss, status; open, resume, overlay several."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from autogpt_gui import paths
from autogpt_gui.engine.run.runs import LIVE, Run, list_runs
from autogpt_gui.ui.charts import STEP_COLUMNS, columns_of
from autogpt_gui.ui.widgets import read_only_table


class RunsPanel(QWidget):
    """Every run under the user data folder. Tick runs to overlay their loss curves."""

    open_requested = Signal(str)  # run path
    resume_requested = Signal(str)
    follow_requested = Signal(str)  # a run that another process trains (here or on another machine)
    overlays_changed = Signal(list)  # [(name, columns dict)]

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = read_only_table(["Run (tick to compare)", "Started", "Steps", "Best val", "Accuracy",
                                      "Status"])
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemDoubleClicked.connect(lambda _: self._open())
        self.refresh_btn = QPushButton("Refresh")
        self.open_btn = QPushButton("Open")
        self.open_btn.setToolTip("Show this run's charts, samples and checkpoints")
        self.follow_btn = QPushButton("Follow")
        self.follow_btn.setToolTip("Watch and steer a run that another process trains (a terminal, torchrun, a "
                                   "cluster job on a shared folder); closing the window leaves it training")
        self.follow_btn.clicked.connect(lambda: self.selected() and self.follow_requested.emit(self.selected()))
        self.resume_btn = QPushButton("Resume")
        self.resume_btn.setToolTip("Continue an unfinished run from its last checkpoint")
        self.refresh_btn.clicked.connect(self.refresh)
        self.open_btn.clicked.connect(self._open)
        self.resume_btn.clicked.connect(lambda: self.selected() and self.resume_requested.emit(self.selected()))
        row = QHBoxLayout()
        for b in (self.refresh_btn, self.open_btn, self.follow_btn, self.resume_btn):
            row.addWidget(b)
        row.addStretch(1)
        self.where = QLabel(f"Runs are kept in {paths.runs_dir()}")
        self.where.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.where.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # a long path never widens the window
        self.where.setToolTip(str(paths.runs_dir()))
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.where)
        self.running_path: str | None = None
        self.summaries = []
        self.refresh()

    def refresh(self) -> None:
        ticked = set(self.ticked())
        self.summaries = list_runs(paths.runs_dir())
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.summaries))
        for i, r in enumerate(self.summaries):
            fork = f"  (branch of {r.parent} at step {r.fork_step})" if r.parent else ""  # where it forked
            name = QTableWidgetItem((r.name if r.name == r.id else f"{r.name}  ({r.id})") + fork)
            name.setFlags(name.flags() | Qt.ItemIsUserCheckable)
            name.setCheckState(Qt.Checked if r.path in ticked else Qt.Unchecked)
            name.setData(256, r.path)
            status = "running" if r.path == self.running_path else r.status
            cells = [name, QTableWidgetItem(time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))),
                     QTableWidgetItem(f"{r.step}/{r.max_steps}" if r.max_steps else str(r.step)),
                     QTableWidgetItem("" if r.best_val_loss is None else f"{r.best_val_loss:.4f}"),
                     QTableWidgetItem("" if r.accuracy is None else f"{r.accuracy * 100:.1f}%"),
                     QTableWidgetItem(status + (f": {r.reason}" if r.reason and status == "failed" else ""))]
            for j, item in enumerate(cells):
                if j:
                    item.setData(256, r.path)
                self.table.setItem(i, j, item)
        self.table.blockSignals(False)
        self._selection_changed()

    def interrupted(self) -> list:
        return [r for r in self.summaries if r.status == "interrupted"]

    def selected(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(256) if items else None

    def ticked(self) -> list[str]:
        out = []
        for i in range(self.table.rowCount()):
            item = self.table.item(i, 0)
            if item is not None and item.checkState() == Qt.Checked:
                out.append(item.data(256))
        return out

    def select_run(self, path: str) -> None:
        for i in range(self.table.rowCount()):
            if self.table.item(i, 0).data(256) == path:
                self.table.selectRow(i)

    def _selection_changed(self) -> None:
        path = self.selected()
        summary = next((r for r in self.summaries if r.path == path), None)
        self.open_btn.setEnabled(summary is not None)
        self.follow_btn.setEnabled(summary is not None and path != self.running_path
                                   and summary.status in (*LIVE, "running elsewhere"))
        self.resume_btn.setEnabled(summary is not None and summary.status in ("interrupted", "stopped", "failed")
                                   and path != self.running_path)

    def _open(self) -> None:
        if self.selected():
            self.open_requested.emit(self.selected())

    def _item_changed(self, item) -> None:
        if item.column() == 0:
            self.overlays_changed.emit(self.overlay_data())

    def overlay_data(self) -> list:
        """The ticked runs' step columns; a branch carries its parent's steps up to the fork, so the two curves
        coincide there (smoothing included) and part at the fork step."""
        out = []
        for path in self.ticked():
            run = Run(path)
            steps, _ = run.read_metrics()
            fork = run.branch()
            if fork and Path(str(fork.get("parent", ""))).is_dir():
                before = [r for r in Run(fork["parent"]).read_metrics()[0] if r["step"] <= int(fork["step"])]
                steps = before + steps
            out.append((run.summary().name, columns_of(steps, STEP_COLUMNS)))
        return out
