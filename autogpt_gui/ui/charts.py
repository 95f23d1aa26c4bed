"""Live charts: train loss (raw and smoothed), validation loss, learning rate, tokens/s.

pyqtgraph the fast way: numpy buffers that grow by doubling, setData on existing items,
peak downsampling and clip-to-view, and smoothing extended incrementally rather than redone.
"""
from __future__ import annotations

import csv

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from autogpt_gui.engine.train.events import EvalMetrics, StepMetrics, numeric_fields
from autogpt_gui.ui.chart_axes import AxisRanges
from autogpt_gui.ui.markers import MarkerLayer, checkpoint_marker

X_AXES = {"step": "Step", "tokens_seen": "Tokens seen", "elapsed": "Time (s)"}
# columns come from the records' own dataclasses: a new metric is added there, nowhere else
STEP_COLUMNS = numeric_fields(StepMetrics)
EVAL_COLUMNS = numeric_fields(EvalMetrics)


def rows_of(records: list[dict], columns: list[str]) -> list[list[float]]:
    """Records (dicts of a metrics dataclass) as rows of floats; a missing value is NaN."""
    return [[np.nan if r.get(c) is None else r[c] for c in columns] for r in records]


def columns_of(records: list[dict], columns: list[str]) -> dict[str, np.ndarray]:
    """Records as one float array per column (what overlays plot)."""
    table = np.asarray(rows_of(records, columns), dtype=float).reshape(len(records), len(columns))
    return {c: table[:, i] for i, c in enumerate(columns)}
OVERLAY_COLORS = ["#e377c2", "#17becf", "#bcbd22", "#8c564b", "#9467bd", "#7f7f7f"]


class Series:
    """Append-only columns of float64 in buffers that double when full."""

    def __init__(self, columns: list[str], capacity: int = 1024):
        self.columns = columns
        self.data = np.zeros((len(columns), capacity))
        self.n = 0

    def extend(self, rows: list[list[float]]) -> None:
        k = len(rows)
        if not k:
            return
        while self.n + k > self.data.shape[1]:
            grown = np.zeros((len(self.columns), self.data.shape[1] * 2))
            grown[:, : self.n] = self.data[:, : self.n]
            self.data = grown
        self.data[:, self.n : self.n + k] = np.asarray(rows, dtype=np.float64).T
        self.n += k

    def col(self, name: str) -> np.ndarray:
        return self.data[self.columns.index(name), : self.n]

    def clear(self) -> None:
        self.n = 0


def ema(values: np.ndarray, alpha: float, start: float = 0.0, start_count: int = 0) -> tuple[np.ndarray, float]:
    """TensorBoard's debiased exponential moving average, vectorised in chunks; returns (smoothed, last state)."""
    out = np.empty_like(values)
    state, count = start, start_count
    if alpha <= 0:
        return values.copy(), float(values[-1]) if len(values) else start
    # alpha ** -chunk must stay finite: about 1e250 at most
    chunk = int(min(4096, max(1, 250 / max(1e-9, -np.log10(alpha)))))
    for lo in range(0, len(values), chunk):
        x = values[lo : lo + chunk]
        k = np.arange(1, len(x) + 1)
        decay = alpha ** k
        # biased EMA: s_k = alpha^k s_0 + (1 - alpha) * sum_j alpha^(k - j) x_j
        acc = np.cumsum(x * alpha ** -np.arange(len(x))) * alpha ** (k - 1)
        biased = decay * state + (1 - alpha) * acc
        out[lo : lo + len(x)] = biased / (1 - alpha ** (count + k))
        state, count = float(biased[-1]), count + len(x)
    return out, state


def _thin(n: int, most: int = 20_000):
    """Indices of at most ~`most` evenly spaced points of n, always including the last."""
    if n <= most:
        return slice(None)
    step = n // most
    idx = np.arange(0, n, step)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)



class ChartsPanel(QWidget):
    """The run's curves, with smoothing, x-axis choice, log scale, crosshair read-out and export."""

    exported = Signal(str)
    checkpoint_clicked = Signal(str)  # the path of a checkpoint marker the user clicked
    # redraw at most twice a second: the GUI thread shares the CPU (and the GIL) with training; at nanoGPT's CPU
    # size 5 frames a second cost 5-9 % of its speed, 2 cost nothing measurable (benchmarks/gui.py)
    FRAME_MS = 500

    def __init__(self, parent=None):
        super().__init__(parent)
        self._frame = QTimer(self, singleShot=True, interval=self.FRAME_MS)
        self._frame.timeout.connect(self.redraw)
        self.steps = Series(STEP_COLUMNS)
        self.evals = Series(EVAL_COLUMNS)
        self._smooth = np.zeros(0)
        self._ema_state = 0.0
        self.alpha = 0.6
        self.x_key = "step"
        self.overlays: list = []

        bar = QHBoxLayout()
        bar.addWidget(QLabel("X axis"))
        self.x_combo = QComboBox()
        for key, text in X_AXES.items():
            self.x_combo.addItem(text, key)
        self.x_combo.setToolTip("Plot against optimizer steps, tokens seen or wall-clock time.")
        self.x_combo.currentIndexChanged.connect(self._x_changed)
        bar.addWidget(self.x_combo)
        bar.addWidget(QLabel("Smoothing"))
        self.smoothing = QSlider(Qt.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setMaximumWidth(160)
        self.smoothing.setToolTip("Exponential moving average of the train loss, as in TensorBoard (0 = raw).")
        self.smoothing.valueChanged.connect(self._smoothing_changed)
        bar.addWidget(self.smoothing)
        self.smoothing_label = QLabel("0.60")
        bar.addWidget(self.smoothing_label)
        self.log_y = QCheckBox("Log scale")
        self.log_y.setToolTip("Logarithmic loss axis: shows late, small improvements.")
        self.log_y.toggled.connect(self._log_toggled)
        bar.addWidget(self.log_y)
        bar.addStretch(1)
        self.readout = QLabel("")
        self.readout.setObjectName("readout")
        bar.addWidget(self.readout)
        png = QPushButton("Export PNG…")
        png.setToolTip("Save the charts as an image.")
        png.clicked.connect(lambda: self._ask_export("png"))
        csv_btn = QPushButton("Export CSV…")
        csv_btn.setToolTip("Save every logged step and evaluation as a table.")
        csv_btn.clicked.connect(lambda: self._ask_export("csv"))
        bar.addWidget(png)
        bar.addWidget(csv_btn)

        self.graphics = pg.GraphicsLayoutWidget()
        self.loss_plot = self.graphics.addPlot(row=0, col=0, colspan=2, title="Loss")
        # one row at the top right: a falling loss leaves that corner free, and three rows would cover
        # the curve's end in a short chart
        self.loss_plot.addLegend(offset=(-10, 5), colCount=3)
        self.loss_plot.showGrid(x=False, y=True, alpha=0.2)  # horizontal lines read values; vertical ones cost paint time
        self.loss_plot.setLabel("left", "loss")
        self.lr_plot = self.graphics.addPlot(row=1, col=0, title="Learning rate")
        self.tps_plot = self.graphics.addPlot(row=1, col=1, title="Tokens / s")
        for never_negative in (self.lr_plot, self.tps_plot):  # a flat line's auto range would dip below zero
            never_negative.setLimits(yMin=0)
        self.graphics.ci.layout.setRowStretchFactor(0, 3)
        self.graphics.ci.layout.setRowStretchFactor(1, 1)
        self.raw_curve = self.loss_plot.plot(name="train (raw)", pen=pg.mkPen((80, 140, 220, 70), width=1))
        self.smooth_curve = self.loss_plot.plot(name="train (smoothed)", pen=pg.mkPen((40, 110, 230), width=2.5))
        self.val_curve = self.loss_plot.plot(name="validation", pen=pg.mkPen((240, 120, 30), width=2),
                                             symbol="o", symbolSize=7, symbolBrush=(240, 120, 30))
        # task runs: exact-match accuracy on held-out examples, beside the loss; shown once a run reports it
        self.acc_plot = pg.PlotItem(title="Held-out accuracy (%)")
        self.acc_plot.setYRange(0, 100, padding=0.02)
        self.acc_plot.showGrid(x=False, y=True, alpha=0.2)
        self.acc_curve = self.acc_plot.plot(pen=pg.mkPen((200, 60, 60), width=2), symbol="o", symbolSize=6,
                                            symbolBrush=(200, 60, 60))
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen((60, 170, 90), width=2))
        self.tps_curve = self.tps_plot.plot(pen=pg.mkPen((150, 100, 200), width=1.5))
        for c in (self.raw_curve, self.smooth_curve, self.lr_curve, self.tps_curve):
            c.setDownsampling(auto=True, method="peak")
            c.setClipToView(True)
        self.crosshair = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((128, 128, 128), style=Qt.DashLine))
        self.loss_plot.addItem(self.crosshair, ignoreBounds=True)
        self.markers = MarkerLayer(self.loss_plot,  # edits, rollbacks, checkpoints, ... (ui/markers.py)
                                   lambda r: self.checkpoint_clicked.emit(r["values"]["path"]))
        self._mouse = pg.SignalProxy(self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._mouse_moved)

        self._label_x()
        self.axes = AxisRanges(self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.graphics, 1)

    # ---- feeding data ---------------------------------------------------------------------------
    def reset(self) -> None:
        self.markers.clear()
        self.steps.clear()
        self.evals.clear()
        self._smooth = np.zeros(0)
        self._ema_state = 0.0
        self.axes.reset()
        self.redraw()

    def add_steps(self, records: list[dict]) -> None:
        """Append step records (dicts of StepMetrics) and redraw."""
        self.steps.extend(rows_of(records, STEP_COLUMNS))
        self._extend_smoothing()
        self.schedule_redraw()

    def schedule_redraw(self) -> None:
        """Coalesce bursts of data into one redraw per frame."""
        if not self._frame.isActive():
            self._frame.start()

    def add_eval(self, record: dict) -> None:
        self.evals.extend(rows_of([record], EVAL_COLUMNS))
        self.schedule_redraw()

    def add_marker(self, record: dict) -> None:
        """Mark an event (a Marker as a dict, or a CheckpointSaved as a dict) on the loss chart."""
        self.markers.add(record if "kind" in record and "text" in record else checkpoint_marker(record))
        self.schedule_redraw()

    def load_history(self, steps: list[dict], evals: list[dict], markers: list[dict] | tuple = ()) -> None:
        """Show a finished (or resumed) run's whole log at once."""
        self.markers.clear()
        for record in sorted(markers, key=lambda r: r["step"]):
            self.markers.add(record if "text" in record else checkpoint_marker(record))
        self.steps.clear()
        self.evals.clear()
        self._smooth = np.zeros(0)
        self._ema_state = 0.0
        self.axes.reset()
        if steps:
            self.steps.extend(rows_of(steps, STEP_COLUMNS))
            self._extend_smoothing()
        self.evals.extend(rows_of(evals, EVAL_COLUMNS))
        self.redraw()

    def set_overlays(self, runs: list[tuple[str, dict[str, np.ndarray]]]) -> None:
        """Other runs' smoothed train loss and validation loss, for comparison."""
        for item in self.overlays:
            self.loss_plot.removeItem(item)
        self.overlays = []
        for i, (name, cols) in enumerate(runs):
            color = OVERLAY_COLORS[i % len(OVERLAY_COLORS)]
            sm, _ = ema(cols["loss"], self.alpha) if len(cols["loss"]) else (cols["loss"], 0)
            curve = self.loss_plot.plot(cols[self.x_key], sm, name=name, pen=pg.mkPen(color, width=1.5))
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
            curve.overlay_cols = cols
            self.overlays.append(curve)

    # ---- drawing ---------------------------------------------------------------------------
    def _extend_smoothing(self) -> None:
        done = len(self._smooth)
        new = self.steps.col("loss")[done:]
        if len(new):
            more, self._ema_state = ema(new, self.alpha, self._ema_state, done)
            self._smooth = np.concatenate([self._smooth, more])

    def redraw(self) -> None:
        x = self.steps.col(self.x_key)
        # logged values are finite (a non-finite loss stops the run), so skip pyqtgraph's O(n) check
        self.raw_curve.setData(x, self.steps.col("loss"), skipFiniteCheck=True)
        # smooth curves lose nothing drawn from at most ~20k points; only the raw loss keeps every
        # point (its peak-downsampled envelope shows the spikes)
        keep = _thin(self.steps.n)
        self.smooth_curve.setData(x[keep], self._smooth[: self.steps.n][keep], skipFiniteCheck=True)
        self.lr_curve.setData(x[keep], self.steps.col("lr")[keep], skipFiniteCheck=True)
        self.tps_curve.setData(x[keep], self.steps.col("tokens_per_sec")[keep], skipFiniteCheck=True)
        self.val_curve.setData(self.evals.col(self.x_key), self.evals.col("val_loss"))
        self.markers.place(self.steps.col("step"), x)
        self.axes.keep()
        accuracy = self.evals.col("accuracy")
        has_accuracy = bool(np.isfinite(accuracy).any())
        if has_accuracy != (self.acc_plot.scene() is not None):
            if has_accuracy:
                self.graphics.addItem(self.acc_plot, row=0, col=2)
            else:
                self.graphics.removeItem(self.acc_plot)
        if has_accuracy:
            known = np.isfinite(accuracy)
            self.acc_curve.setData(self.evals.col(self.x_key)[known], accuracy[known] * 100)

    def _x_changed(self) -> None:
        self.x_key = self.x_combo.currentData()
        self._label_x()
        for curve in self.overlays:
            curve.setData(curve.overlay_cols[self.x_key], curve.yData)
        self.redraw()

    def _log_toggled(self, on: bool) -> None:
        self.loss_plot.setLogMode(y=on)
        self.redraw()  # the loss range is refitted in the new scale

    def _label_x(self) -> None:
        for plot in (self.loss_plot, self.acc_plot):  # set on a change only: a label costs a layout
            plot.setLabel("bottom", X_AXES[self.x_key])

    def _smoothing_changed(self, value: int) -> None:
        self.alpha = value / 100
        self.smoothing_label.setText(f"{self.alpha:.2f}")
        self._smooth, self._ema_state = ema(self.steps.col("loss"), self.alpha) if self.steps.n else (np.zeros(0), 0.0)
        for curve in self.overlays:
            curve.setData(curve.overlay_cols[self.x_key], ema(curve.overlay_cols["loss"], self.alpha)[0])
        self.redraw()

    def _mouse_moved(self, event) -> None:
        pos = event[0]
        if not self.loss_plot.sceneBoundingRect().contains(pos) or not self.steps.n:
            return
        x = self.loss_plot.vb.mapSceneToView(pos).x()
        self.readout.setText(self.readout_at(x))

    def readout_at(self, x: float) -> str:
        """Values of the step nearest to x on the current axis, as the crosshair shows them."""
        xs = self.steps.col(self.x_key)
        i = int(np.clip(np.searchsorted(xs, x), 0, self.steps.n - 1))
        self.crosshair.setPos(xs[i])
        text = (f"step {int(self.steps.col('step')[i])}  loss {self.steps.col('loss')[i]:.4f}  "
                f"smoothed {self._smooth[i]:.4f}  lr {self.steps.col('lr')[i]:.2e}")
        if self.evals.n:
            j = int(np.argmin(np.abs(self.evals.col(self.x_key) - xs[i])))
            text += f"  val {self.evals.col('val_loss')[j]:.4f} (step {int(self.evals.col('step')[j])})"
        return text

    # ---- export ---------------------------------------------------------------------------
    def _ask_export(self, kind: str) -> None:
        flt = "PNG image (*.png)" if kind == "png" else "CSV table (*.csv)"
        path, _ = QFileDialog.getSaveFileName(self, f"Export charts as {kind.upper()}", f"charts.{kind}", flt)
        if path:
            self.export_png(path) if kind == "png" else self.export_csv(path)

    def export_png(self, path: str) -> None:
        self.graphics.grab().save(path)
        self.exported.emit(path)

    def export_csv(self, path: str) -> None:
        """Every logged step: the step record's columns, the smoothed loss, and the evaluation at that step."""
        extra = [c for c in EVAL_COLUMNS if c not in STEP_COLUMNS]
        evals = {int(self.evals.col("step")[j]): self.evals.data[:, j] for j in range(self.evals.n)}
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([*STEP_COLUMNS, "smoothed_loss", *extra])
            for i in range(self.steps.n):
                row = self.steps.data[:, i]
                ev = evals.get(int(row[0]))
                w.writerow([*(_cell(v) for v in row), _cell(self._smooth[i]),
                            *(_cell(ev[EVAL_COLUMNS.index(c)]) if ev is not None else "" for c in extra)])
        self.exported.emit(path)


def _cell(v: float) -> str:
    """A CSV cell: integers without a decimal point, floats in full, missing as empty."""
    if np.isnan(v):
        return ""
    return str(int(v)) if float(v).is_integer() and abs(v) < 2**53 else repr(float(v))
