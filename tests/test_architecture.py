"""The layering rules of DESIGN.md, checked by import-linter and by a plain scan."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_engine_imports_no_qt():
    pattern = re.compile(r"^\s*(from|import)\s+(PySide6|pyqtgraph|shiboken6|PyQt\d)", re.M)
    offenders = [str(p) for p in (ROOT / "autogpt_gui" / "engine").rglob("*.py") if pattern.search(p.read_text())]
    assert not offenders


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed")
    done = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.split("Contracts:")[-1] or "0 broken" in done.stdout


def test_engine_runs_without_qt_loaded():
    code = ("import sys; import autogpt_gui.engine.session, autogpt_gui.cli; "
            "assert not any(m.startswith(('PySide6', 'pyqtgraph')) for m in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_window_modules_import_without_torch():
    """The window appears before torch loads: only workers import it, in their threads."""
    code = ("import sys; import autogpt_gui.ui.main_window, autogpt_gui.ui.app; "
            "assert 'torch' not in sys.modules, 'torch was imported by the window modules'")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_code_passes_the_linter():
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("ruff is not installed")
    done = subprocess.run([exe, "check", "autogpt_gui", "tests", "benchmarks", "packaging"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_engine_and_config_pass_the_type_checker():
    """mypy over the engine, config, errors and length (the files [tool.mypy] names); it is a dev dependency."""
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success" in done.stdout


def test_the_test_run_has_a_timeout():
    """A hang fails with its stack in minutes (pytest-timeout), not at CI's limit."""
    import pytest_timeout  # noqa: F401 - installed by the test set-up

    assert re.search(r"^timeout = \d+", (ROOT / "pyproject.toml").read_text(), re.M)


def test_the_public_face_resolves_lazily():
    """`from autogpt_gui import Trainer, AutoGPTModel, RunConfig, load_model` works, and importing the
    package or its configuration alone loads no torch."""
    code = ("import sys, autogpt_gui, autogpt_gui.config; assert 'torch' not in sys.modules; "
            "from autogpt_gui import Trainer, AutoGPTModel, RunConfig, load_model; "
            "from autogpt_gui.engine.train.trainer import Trainer as T; assert Trainer is T; "
            "assert callable(load_model) and RunConfig().model is not None and AutoGPTModel")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_engine_is_laid_out_by_stage():
    """engine/ holds one subpackage per stage, with the composition root and loading above them."""
    engine = ROOT / "autogpt_gui" / "engine"
    assert {p.name for p in engine.iterdir() if (p / "__init__.py").is_file()} == {"data", "model", "train", "run"}
    loose = {p.stem for p in engine.glob("*.py")} - {"__init__"}
    assert loose == {"session", "load", "export", "lr_finder", "files"}
