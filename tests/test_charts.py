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
