"""Event markers on the loss chart: live edits, rollbacks, early stop, pauses, resumes, extensions, and
the checkpoints saved.

Each Marker record (engine/train/events.py, also read back from metrics.jsonl) becomes a thin vertical line
at its step, with a short label and a tooltip saying when and what (old and new values of an edit). A
checkpoint's line can be clicked: the window offers to sample from it, export it or branch from it.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

STYLE = {  # kind -> (colour, label on the chart)
    "edit": ((30, 140, 200), "edit"),
    "rollback": ((220, 50, 50), "rollback"),
    "early_stop": ((130, 60, 180), "early stop"),
    "extend": ((40, 150, 70), "extend"),
    "oom": ((230, 140, 0), "OOM"),
    "resumed": ((110, 110, 110), "resumed"),
    "checkpoint": ((170, 170, 170), ""),
    "pause": ((160, 160, 160), ""),
    "resume": ((160, 160, 160), ""),
}


class MarkerLayer:
    """The markers of one run on one plot; place() puts them on the current x axis."""

    def __init__(self, plot: pg.PlotItem, on_click=None):
        self.plot, self.on_click = plot, on_click
        self.records: list[dict] = []
        self.lines: list[pg.InfiniteLine] = []

    def clear(self) -> None:
        for line in self.lines:
            self.plot.removeItem(line)
        self.records, self.lines = [], []

    def add(self, record: dict) -> None:
        if record.get("kind") == "checkpoint" and any(r["kind"] == "checkpoint" and r["step"] == record["step"]
                                                      for r in self.records):
            return  # best.pt / last.pt of a step already marked
        if record.get("kind") == "resumed":  # what the old run did after that checkpoint is gone
            keep = [i for i, r in enumerate(self.records) if r["step"] <= record["step"]]
            for i, line in enumerate(self.lines):
                if i not in keep:
                    self.plot.removeItem(line)
            self.records = [self.records[i] for i in keep]
            self.lines = [self.lines[i] for i in keep]
        color, label = STYLE.get(record.get("kind", ""), ((120, 120, 120), ""))
        line = pg.InfiniteLine(pos=record["step"], angle=90, movable=False,
                               pen=pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine), label=label or None,
                               labelOpts={"position": 0.72, "color": color, "rotateAxis": (1, 0)})
        line.setToolTip(tooltip(record))
        if record.get("kind") == "checkpoint" and self.on_click is not None:
            line.setPen(pg.mkPen(color, width=1, style=Qt.PenStyle.DotLine))
            line.setHoverPen(pg.mkPen((90, 90, 90), width=3))
            line.sigClicked.connect(lambda _line, _ev, r=record: self.on_click(r))
        self.plot.addItem(line, ignoreBounds=True)
        self.records.append(record)
        self.lines.append(line)

    def place(self, steps: np.ndarray, xs: np.ndarray) -> None:
        """Move each marker to its step's position on the x axis shown (steps, tokens or time)."""
        for record, line in zip(self.records, self.lines):
            x = float(np.interp(record["step"], steps, xs)) if len(steps) else float(record["step"])
            line.setPos(x)


def tooltip(record: dict) -> str:
    minutes, seconds = divmod(int(record.get("elapsed", 0)), 60)
    lines = [f"step {record['step']} · {minutes}:{seconds:02d} into the run", record.get("text", "")]
    for name, value in (record.get("values") or {}).items():
        if isinstance(value, list) and len(value) == 2:
            lines.append(f"{name}: {value[0]} → {value[1]}")
        else:
            lines.append(f"{name}: {value}")
    return "\n".join(line for line in lines if line)


def checkpoint_marker(saved: dict) -> dict:
    """A CheckpointSaved (or a checkpoint folder entry) as a marker record the chart can draw."""
    from pathlib import Path

    val = saved.get("val_loss")
    return {"step": int(saved["step"]), "kind": "checkpoint", "elapsed": saved.get("elapsed", 0),
            "text": f"checkpoint {Path(saved['path']).name}" + (f", validation loss {val:.4f}" if val else "")
                    + " (click: sample, export or branch)",
            "values": {"path": str(saved["path"])}}
