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


# ---- each setting described once (autogpt_gui/settings.py) -------------------------------------
# (file, setting) pairs that may say the same words for another reason, or that wait for their owner
ELSEWHERE = {
    ("ui/charts.py", "optim.lr"): "the title of the chart of the learning rate",
    ("ui/window_tools.py", "train.on_oom"): "the title of the out-of-memory question",
}


def _described_once_offenders(package: Path) -> list[str]:
    """Where a setting's label, a choice's text or a setting's list of choices is written again."""
    import ast

    from autogpt_gui.settings import SETTINGS

    texts = {s.label: s.key for s in SETTINGS.values()}
    texts.update({text: s.key for s in SETTINGS.values() for value, text in s.choices if text != value})
    choice_sets = {frozenset(s.values()): s.key for s in SETTINGS.values() if len(s.choices) >= 2}
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "settings.py" and path.parent == package:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = str(path.relative_to(package))
            where = f"{name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in texts:
                if (name, texts[node.value]) not in ELSEWHERE:
                    offenders.append(f"{where} writes {texts[node.value]}'s text {node.value!r}")
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2:
                firsts = [e.elts[0] if isinstance(e, ast.Tuple) and e.elts else e for e in node.elts]
                if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in firsts):
                    found = frozenset(e.value for e in firsts)  # type: ignore[attr-defined]
                    if found in choice_sets and (name, choice_sets[found]) not in ELSEWHERE:
                        offenders.append(f"{where} lists the choices of {choice_sets[found]}")
    return offenders


def test_each_setting_label_and_list_of_choices_is_written_once():
    """A label, a choice's text or a list of choices lives in its setting's description, nowhere else."""
    assert _described_once_offenders(ROOT / "autogpt_gui") == []


def _bound_literal_offenders(package: Path) -> list[str]:
    """Numbers written where bounds should come from the descriptions: in a widget's range calls of the
    modules that draw settings, and compared with a value in validation.py's checks (0 and 1 are no bound)."""
    import ast

    from autogpt_gui.settings import SETTINGS

    def numbers(node: ast.AST) -> list[float]:
        arithmetic = (ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)
        # 10**8 and -1 count as the numbers they are
        if isinstance(node, ast.expr) and all(isinstance(n, arithmetic) for n in ast.walk(node)):
            value = eval(compile(ast.Expression(node), "<bound>", "eval"), {"__builtins__": {}})
            return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []
        return [n for child in ast.iter_child_nodes(node) for n in numbers(child)]

    bounds = {b for s in SETTINGS.values() for b in (s.low, s.high, *(s.offer or ())) if b is not None}
    offenders = []
    for path in sorted((package / "ui").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "autogpt_gui.settings" not in text and "setting_editors" not in text:
            continue  # draws no setting
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("setRange", "setMinimum", "setMaximum", "setSingleStep"):
                found = [n for arg in node.args for n in numbers(arg) if n not in (0, 1)]
                if found:
                    offenders.append(f"ui/{path.name}:{node.lineno} {node.func.attr}{tuple(found)}")
    tree = ast.parse((package / "validation.py").read_text(encoding="utf-8"))
    checks = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name in ("validate", "_lora_problems")]
    for check in checks:
        for node in ast.walk(check):
            if isinstance(node, ast.Compare):
                found = [n for part in (node.left, *node.comparators) for n in numbers(part)
                         if n not in (0, 1) and n in bounds]
                if found:
                    offenders.append(f"validation.py:{node.lineno} {check.name} compares with {found}")
    return offenders


def test_bounds_derive_from_the_descriptions():
    """The form's ranges and validate()'s limits are read from the descriptions, never written again."""
    assert _bound_literal_offenders(ROOT / "autogpt_gui") == []


@pytest.mark.parametrize("file, old, new, caught", [
    ("ui/data_panel.py", "annotations\n", 'annotations\nLABEL = "Learning rate"\n', "writes optim.lr's text"),
    ("ui/samples_panel.py", "annotations\n", 'annotations\nNAMES = ("adamw", "adam", "sgd", "muon")\n',
     "lists the choices of optim.name"),
    ("ui/live_edit.py", "make_editor(desc)\n", "make_editor(desc)\n            w.setRange(0, 96)\n", "setRange(96,)"),
    ("validation.py", "    _choice(p, cfg, \"optim.name\"", "    if o.lr > 10:\n        pass\n    _choice(p, cfg, \"optim.name\"",
     "validate compares with [10]"),
])
def test_the_described_once_checks_catch_a_planted_duplicate(tmp_path, file, old, new, caught):
    """Each check finds a label, a list of choices or a bound written a second time."""
    package = tmp_path / "autogpt_gui"
    shutil.copytree(ROOT / "autogpt_gui", package, ignore=shutil.ignore_patterns("__pycache__"))
    text = (package / file).read_text(encoding="utf-8")
    assert old in text
    (package / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    found = _described_once_offenders(package) + _bound_literal_offenders(package)
    assert any(caught in o for o in found), found


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


def test_no_module_is_a_room_too_big_to_live_in():
    """No module of the package passes 450 lines (split it by responsibility; never pack lines to get under)."""
    big = {str(p.relative_to(ROOT)): n for p in (ROOT / "autogpt_gui").rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert big == {}
