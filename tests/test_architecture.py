"""The layering rules of DESIGN.md, checked by import-linter and by a plain scan."""
import ast
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


# ---- add-ons use the Trainer's public interface (engine/train/addons.py) -------------------------------
# The training loop's own modules: the Trainer (trainer.py), its step (steps.py), its state machine and
# requests (requests.py) and its face to add-ons (addons.py, AddonHost). Only they touch its private state.
TRAINER_OWN = {f"autogpt_gui/engine/train/{name}.py" for name in ("trainer", "steps", "requests", "addons")}


def _mentions_trainer(node: ast.AST | None) -> bool:
    return node is not None and bool(re.search(r"\b(Trainer|AddonHost)\b", ast.unparse(node)))


def _is_trainer(node: ast.AST, names: set[str]) -> bool:
    """An expression that gives a Trainer: Trainer(...), x.trainer, or a name already bound to one."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return name.endswith("Trainer")
    if isinstance(node, ast.Attribute):
        return node.attr == "trainer"
    if isinstance(node, ast.Subscript):
        return bool(re.search(r"trainers\b", ast.unparse(node.value)))
    return isinstance(node, ast.Name) and node.id in names


def _trainer_names(tree: ast.AST) -> set[str]:
    """Names bound to a Trainer anywhere in a module: parameters named `trainer` or annotated with one,
    `t = Trainer(...)`, `t = session.trainer`, `t = trainer`, `for t in ...trainers`."""
    names = {"trainer"}
    while True:
        found = set(names)
        for node in ast.walk(tree):
            if isinstance(node, ast.arg) and (node.arg == "trainer" or _mentions_trainer(node.annotation)):
                found.add(node.arg)
            elif isinstance(node, ast.Assign) and _is_trainer(node.value, found):
                found.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and (
                    _mentions_trainer(node.annotation) or (node.value is not None and _is_trainer(node.value, found))):
                found.add(node.target.id)
            elif isinstance(node, ast.NamedExpr) and _is_trainer(node.value, found):
                found.add(node.target.id)
            elif isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.target, ast.Name) and \
                    re.search(r"trainers\b", ast.unparse(node.iter)):
                found.add(node.target.id)
        if found == names:
            return names
        names = found


def _trainer_reach_ins(source: str) -> list[str]:
    """`line: expression` for every read or write of a Trainer's private attribute in source."""
    tree = ast.parse(source)
    names = _trainer_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                and _is_trainer(node.value, names):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("snippet", [
    "def coordinate(trainer):\n    return trainer._stop.is_set()",
    "def attach(self, host: 'Trainer'):\n    host._micro = 0",
    "t = Trainer(model, opt, train, val)\nt._emit('log', 'x')",
    "tr = session.trainer\ntr._forward = wrapped",
    "self.trainer._plan(None)",
    "for t in self.trainers:\n    t._scaler_state = None",
    "same = trainer\nsame._end_status",
    "trainers[0]._requests.put(('stop', None))",
])
def test_the_reach_in_check_catches_a_private_attribute_of_a_trainer(snippet):
    assert len(_trainer_reach_ins(snippet)) == 1


def test_the_reach_in_check_leaves_other_private_attributes_alone():
    clean = ("class Guard:\n    def attach(self, trainer):\n        self._seen = trainer.step\n"
             "        trainer.marker('x', 'y')\n    def check(self, other):\n        return other._cache\n")
    assert _trainer_reach_ins(clean) == []


def test_outside_the_training_loop_nothing_touches_a_trainers_private_state():
    """Add-ons (guards, edits, distributed, snapshots, the control file), the session, the CLI and the UI
    use what engine/train/addons.py offers; only TRAINER_OWN may touch `trainer._x`."""
    offenders = []
    for path in sorted((ROOT / "autogpt_gui").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel not in TRAINER_OWN:
            offenders += [f"{rel}:{where}" for where in _trainer_reach_ins(path.read_text(encoding="utf-8"))]
    assert not offenders
