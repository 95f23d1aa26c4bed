"""The ranges the charts' axes show while a run trains. Left to pyqtgraph's auto range, every axis is laid out
and repainted on every frame as the curves grow, and at nanoGPT's CPU size that was most of the window's cost
(the GUI thread shares two cores and the GIL with training). Here the axes change a few times a run."""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtWidgets import QGraphicsItem


class Pins:
    """Fixed ranges on the axes of plots. The user's own view wins: once they zoom or pan an axis it is theirs
    until its auto-range button ("A") gives it back."""

    def __init__(self):
        # per axis: the range asked for, and the range the view showed then (pyqtgraph widens an empty one)
        self._set: dict[tuple[int, int], tuple[tuple[float, float], tuple[float, float]]] = {}

    def pin(self, plot, axis: int, lo: float, hi: float) -> None:
        vb = plot.getViewBox()
        key = (id(vb), axis)
        ours = self._set.get(key)
        if ours is not None and not vb.state["autoRange"][axis]:
            if not _same(vb.viewRange()[axis], ours[1]):
                return  # the user's view
            if ours[0] == (lo, hi):
                return
        (vb.setXRange if axis == 0 else vb.setYRange)(lo, hi, padding=0)
        self._set[key] = ((lo, hi), tuple(vb.viewRange()[axis]))

    def release(self, plot, axis: int) -> None:
        """Back to pyqtgraph's auto range (nothing to pin to), unless the user holds a view of their own."""
        vb = plot.getViewBox()
        ours = self._set.pop((id(vb), axis), None)
        if ours is not None and _same(vb.viewRange()[axis], ours[1]):
            vb.enableAutoRange(axis=axis)


def _same(a, b) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12) for x, y in zip(a, b))


def round_up(v: float) -> float:
    """The smallest of 1, 2 and 5 times a power of ten that is at least v (1 for nothing yet)."""
    if not v > 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(v))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= v * (1 - 1e-12))


def grown(top: float, peak: float) -> float:
    """The top of a range that starts at zero: kept while the data fits, else the peak with a quarter to spare."""
    return top if 0 < peak <= top else peak * 1.25


class AxisRanges:
    """Keeps one ChartsPanel's axes: the x axes to x_span(), the learning-rate and tokens/s axes from zero, the
    loss axis fitted with room to fall. Each axis is drawn once into a pixmap, again only when it changes."""

    def __init__(self, charts):
        self.charts = charts
        self.pins = Pins()
        self._tops = {"lr": 0.0, "tokens_per_sec": 0.0}
        self._loss_range: tuple[float, float, bool] | None = None
        for plot in (charts.loss_plot, charts.lr_plot, charts.tps_plot, charts.acc_plot):
            for name in ("left", "bottom"):
                plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def reset(self) -> None:
        """A new run or another run's history: fit afresh."""
        self._tops = dict.fromkeys(self._tops, 0.0)
        self._loss_range = None

    def x_span(self) -> tuple[float, float] | None:
        """The x range the charts show: from the run's first point to the next round number (1, 2 or 5 times a
        power of ten) past its last, so the curves fill at least two fifths of the width and the axes change only
        a few times in a run; never past the run's planned end on the step and tokens axes (then it shows the
        whole run). Longer overlays stretch it. None before the first point."""
        c = self.charts
        if not c.steps.n:
            return None
        xs = c.steps.col(c.x_key)
        first, last = float(xs[0]), float(xs[-1])
        last = max([last, *(float(np.nanmax(curve.xData)) for curve in c.overlays
                            if curve.xData is not None and len(curve.xData))])
        end = round_up(last)
        step, total = c.steps.col("step")[-1], c.steps.col("max_steps")[-1]
        if c.x_key != "elapsed" and np.isfinite(total) and total > 0 and step > 0:
            planned = total if c.x_key == "step" else c.steps.col("tokens_seen")[-1] * total / step
            end = max(min(end, planned), last)
        lo = 0.0 if first <= 0.25 * end or first >= end else first  # a branch's log starts where it forked
        pad = 0.02 * (end - lo)  # room for the first and last tick labels
        return lo - pad, end + pad

    def keep(self) -> None:
        """The x axes span x_span(), the learning-rate and tokens/s axes start at zero and grow only when a value
        passes their top: the axes are laid out again a few times in a run, not on every frame."""
        c = self.charts
        span = self.x_span()
        for plot in (c.loss_plot, c.lr_plot, c.tps_plot, c.acc_plot):
            if span is None:
                self.pins.release(plot, 0)
            else:
                self.pins.pin(plot, 0, *span)
        self._fit_loss()
        for plot, col in ((c.lr_plot, "lr"), (c.tps_plot, "tokens_per_sec")):
            values = c.steps.col(col)
            peak = float(np.nanmax(values)) if c.steps.n and np.isfinite(values).any() else 0.0
            self._tops[col] = grown(self._tops[col], peak) if peak > 0 else 0.0
            if self._tops[col] > 0:
                self.pins.pin(plot, 1, 0.0, self._tops[col])
            else:
                self.pins.release(plot, 1)

    def _fit_loss(self) -> None:
        """The loss axis fits every curve on it (raw, validation, overlays) with a margin, and is fitted again only
        when a value falls outside: as a loss falls, a few times a run (in log scale, in log units)."""
        c = self.charts
        log = c.log_y.isChecked()
        values = [c.steps.col("loss"), c.evals.col("val_loss"), *(curve.yData for curve in c.overlays)]
        ys = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values if v is not None])
        ys = ys[np.isfinite(ys) & (ys > 0)] if log else ys[np.isfinite(ys)]
        if not len(ys):
            self._loss_range = None
            self.pins.release(c.loss_plot, 1)
            return
        lo, hi = (float(np.log10(ys.min())), float(np.log10(ys.max()))) if log else (float(ys.min()), float(ys.max()))
        fit = self._loss_range
        if fit is None or fit[2] != log or lo < fit[0] or hi > fit[1]:
            span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
            fit = (lo - 0.1 * span, hi + 0.05 * span, log)  # the room below lets the loss fall a while
            self._loss_range = fit
        self.pins.pin(c.loss_plot, 1, fit[0], fit[1])
