"""The engine learns: Tiny Shakespeare's loss falls below nanoGPT's mark; addition is solved."""
import pytest

from autogpt_gui.config import RunConfig
from autogpt_gui.engine.data.sources import make_source
from autogpt_gui.resources import resource_path


@pytest.mark.slow
def test_shakespeare_char_reaches_nanogpt_loss_in_300_steps(capsys):
    """The README's example as a user types it, on the built-in text: nothing outside the repository."""
    from autogpt_gui import cli, paths
    from autogpt_gui.engine.run.runs import list_runs

    assert cli.main(["train", "--config", "shakespeare", "--set", "train.max_steps=300", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Tiny Shakespeare (built in)" in out and "0.80M parameters" in out
    (run,) = list_runs(paths.runs_dir())
    assert run.status == "finished" and run.step == 300 and run.best_val_loss < 2.45, run


@pytest.mark.slow
def test_addition_shows_95_percent_held_out_accuracy_in_cli_metrics_runs_and_window(capsys, qtbot, tmp_path):
    """The README's addition example with its defaults (2,000 steps): accuracy everywhere a user looks."""
    import json

    from autogpt_gui import cli, paths
    from autogpt_gui.engine.run.runs import list_runs

    assert cli.main(["train", "--config", "addition", "--quiet"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "held-out accuracy" in ln]
    assert len(lines) == 8 and lines[-1].startswith("step 2000:")  # one line at every evaluation
    final = float(lines[-1].rsplit("held-out accuracy ", 1)[1].rstrip("%"))
    assert final >= 95.0, lines

    (run,) = list_runs(paths.runs_dir())
    records = (paths.runs_dir() / run.id / "metrics.jsonl").read_text().splitlines()
    evals = [json.loads(ln) for ln in records if '"eval"' in ln]
    assert evals[-1]["step"] == 2000 and evals[-1]["accuracy"] == pytest.approx(final / 100, abs=1e-3)
    assert cli.main(["runs"]) == 0
    assert f"{final:.1f}%" in capsys.readouterr().out

    held_out = make_source(RunConfig.load(resource_path("configs", "addition.toml")).data).task.val
    assert len(held_out) == 1000  # the accuracy is over the whole held-out split

    from autogpt_gui.ui.app import make_app
    from autogpt_gui.ui.main_window import MainWindow

    make_app()
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    w.open_run(run.path)
    w.charts.redraw()
    assert w.charts.acc_plot.scene() is not None
    assert w.charts.acc_curve.yData[-1] == pytest.approx(final, abs=0.1)
    shown = w.samples.history.toPlainText()
    assert "held-out examples:" in shown and "   right" in shown  # worked examples: prompt, answer, verdict
    w.grab().save(str(paths.runs_dir().parent / "addition-window.png"))
    assert w.wait_for_threads(120)
