"""The loss chart: smoothing, axes, crosshair read-out, overlays and export, without a training run."""
import csv

import numpy as np
import pytest

from autogpt_gui.ui.app import make_app
from autogpt_gui.ui.charts import ChartsPanel, ema


def _records(n, start=1):
    return [{"step": s, "tokens_seen": s * 100, "elapsed": s * 0.5, "loss": 5.0 / s ** 0.5, "lr": 1e-3,
             "tokens_per_sec": 2000.0} for s in range(start, start + n)]


def test_ema_matches_tensorboard_and_extends_incrementally():
    x = np.random.default_rng(0).random(1000)
    expected, acc = [], 0.0
    for i, v in enumerate(x):
        acc = 0.9 * acc + 0.1 * v
        expected.append(acc / (1 - 0.9 ** (i + 1)))
    whole, _ = ema(x, 0.9)
    first, state = ema(x[:600], 0.9)
    rest, _ = ema(x[600:], 0.9, state, 600)
    assert np.allclose(whole, expected) and np.allclose(np.concatenate([first, rest]), expected)


@pytest.fixture
def charts(qtbot):
    make_app()
    c = ChartsPanel()
    qtbot.addWidget(c)
    c.resize(1000, 600)
    c.show()
    return c


def test_chart_shows_steps_evals_and_reads_values_under_the_cursor(charts, qtbot):
    charts.add_steps(_records(100))
    charts.add_eval({"step": 50, "tokens_seen": 5000, "elapsed": 25.0, "val_loss": 0.9})
    qtbot.waitUntil(lambda: charts.raw_curve.xData is not None and len(charts.raw_curve.xData) == 100,
                    timeout=120_000)
    assert charts.smooth_curve.yData[-1] > charts.raw_curve.yData[-1]  # smoothing lags a falling loss
    assert "step 50" in charts.readout_at(50) and "val 0.9000" in charts.readout_at(50)

    charts.smoothing.setValue(0)
    assert np.allclose(charts.smooth_curve.yData, charts.raw_curve.yData)
    charts.x_combo.setCurrentIndex(charts.x_combo.findData("tokens_seen"))
    assert charts.raw_curve.xData[-1] == 10_000
    charts.log_y.setChecked(True)
    assert charts.loss_plot.getAxis("left").logMode


def test_overlays_and_export(charts, tmp_path):
    charts.add_steps(_records(20))
    charts.redraw()
    cols = {k: np.arange(1, 11, dtype=float) for k in ("step", "tokens_seen", "elapsed")}
    cols["loss"] = np.linspace(3, 2, 10)
    charts.set_overlays([("other run", cols)])
    assert len(charts.overlays) == 1 and len(charts.overlays[0].yData) == 10
    charts.export_csv(str(tmp_path / "m.csv"))
    with open(tmp_path / "m.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 20 and rows[0]["step"] == "1" and float(rows[-1]["loss"]) == pytest.approx(5 / 20 ** 0.5)
    charts.export_png(str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 1000


def _planned(lo, hi, total=1000):
    return [{"step": s, "tokens_seen": s * 100, "elapsed": s * 0.5, "loss": 5.0 / s ** 0.5,
             "lr": 1e-3 * min(1.0, s / 50), "tokens_per_sec": 2000.0 + s % 7, "max_steps": total} for s in range(lo, hi)]


def test_axes_hold_still_while_a_run_fills_them_and_a_users_zoom_stays(charts):
    """While a run trains, the x axes end at the next round number past the last step (the curve fills at least
    two fifths of the width), capped at the planned end; the rate and tokens/s axes start at zero. So the axes
    change a few times a run, not every frame (their layout was most of the window's cost at small sizes). A
    user's zoom is theirs until they press the auto-range button."""
    loss_vb, lr_vb = charts.loss_plot.getViewBox(), charts.lr_plot.getViewBox()
    ranges = set()
    for lo in range(1, 500, 10):
        charts.add_steps(_planned(lo, lo + 10))
        charts.redraw()
        if lo > 200:
            ranges.add(tuple(np.round(loss_vb.viewRange()[0], 6)))
    assert len(ranges) == 1, ranges  # steps 210..500 all within one range: 0..500 with a margin
    (x0, x1), = ranges
    assert -15 < x0 < 0 and 500 < x1 < 520
    assert lr_vb.viewRange()[1][0] == 0 and lr_vb.viewRange()[1][1] >= 1e-3  # from zero, over the peak
    assert charts.tps_plot.getViewBox().viewRange()[1][0] == 0

    charts.add_steps(_planned(500, 700))
    charts.redraw()
    assert 1000 <= loss_vb.viewRange()[0][1] < 1030  # the next round number is the planned end: the whole run

    loss_vb.scaleBy(x=0.25)  # what the mouse wheel does: the user zooms in on the loss
    zoomed = loss_vb.viewRange()[0]
    charts.add_steps(_planned(700, 800))
    charts.redraw()
    assert np.allclose(loss_vb.viewRange()[0], zoomed)  # their view stays while the run goes on
    assert lr_vb.viewRange()[0][1] > 1000  # the other charts still follow the run
    loss_vb.enableAutoRange()  # the "A" button: the chart follows the run again
    charts.redraw()
    assert 1000 <= loss_vb.viewRange()[0][1] < 1030

    charts.x_combo.setCurrentIndex(charts.x_combo.findData("elapsed"))  # wall time has no planned end
    assert 400 <= loss_vb.viewRange()[0][1] < 520  # 400 s so far: up to 500 s


def test_a_run_whose_first_frame_holds_one_step_is_still_followed_and_overlays_fit(charts):
    """One point is an empty range, which pyqtgraph widens on its own; that must not read as the user's zoom."""
    loss_vb = charts.loss_plot.getViewBox()
    charts.add_steps(_planned(1, 2))
    charts.redraw()
    charts.add_steps(_planned(2, 300))
    charts.redraw()
    assert 300 < loss_vb.viewRange()[0][1] < 520
    cols = {k: np.arange(1, 3001, dtype=float) for k in ("step", "tokens_seen", "elapsed")}
    cols["loss"] = np.linspace(3, 2, 3000)
    charts.set_overlays([("a longer run", cols)])
    charts.redraw()
    assert loss_vb.viewRange()[0][1] > 3000  # the longer run's whole curve
