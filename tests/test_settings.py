"""Each setting described once, and what derives from it; a pretrained model brings its own tokenizer."""
from __future__ import annotations

import math
from dataclasses import fields

import pytest

from autogpt_gui import cli, paths
from autogpt_gui.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from autogpt_gui.errors import ConfigError
from autogpt_gui.settings import KINDS, SETTINGS, choices_of, form_settings, live_keys, setting

SECTIONS = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig, "train": TrainConfig}
QUICK = ["data.source='shakespeare'", "model.block_size=32", "train.batch_size=4", "train.max_steps=6",
         "train.eval_interval=3", "train.eval_batches=2", "optim.warmup_steps=1", "train.precision='fp32'",
         "train.sample_tokens=0", "train.device='cpu'", "train.checkpoint_interval=3"]


def test_live_keys_are_todays_live_edits_in_their_order():
    from autogpt_gui.engine.train.edits import EDITABLE

    expected = ("optim.lr", "optim.min_lr", "optim.grad_clip", "optim.weight_decay", "train.eval_interval",
                "train.checkpoint_interval", "train.sample_prompt", "train.sample_tokens")
    assert live_keys() == expected == tuple(EDITABLE)
    assert all(setting(k).applies.startswith("next") for k in live_keys())


def test_every_setting_of_a_run_has_one_description_and_only_those():
    keys = {f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in fields(cls)}
    assert set(SETTINGS) == keys
    defaults = RunConfig()
    for desc in SETTINGS.values():
        assert desc.kind in KINDS and desc.label and desc.tip, desc.key
        default = getattr(getattr(defaults, desc.section), desc.name)
        if desc.kind == "choice" and desc.key != "model.preset":
            assert default in desc.values(), desc.key
        if desc.kind in ("int", "float", "sci"):
            assert desc.accepts(default), f"{desc.key}: the default {default} is outside its own bounds"


def _just_outside(desc, below: bool) -> float:
    bound = desc.low if below else desc.high
    inside = desc.open_low if below else desc.open_high
    nudge = 0 if inside else (1 if desc.kind == "int" else 1e-9)
    return bound - nudge if below else bound + nudge


@pytest.mark.parametrize("key", [k for k, s in SETTINGS.items() if s.low is not None or s.high is not None])
def test_validate_refuses_a_value_just_outside_each_described_bound_at_its_field(key):
    desc = setting(key)
    base = ["model.finetune='lora'", "data.tokenizer='bpe'", "data.source='task:addition'"]
    for below in (True, False):
        if (desc.low if below else desc.high) is None:
            continue
        value = _just_outside(desc, below)
        section = getattr(RunConfig().with_overrides(base), desc.section)
        cfg = RunConfig().with_overrides(base)
        setattr(cfg, desc.section, type(section)(**{**vars(section), desc.name: value}))
        assert key in [f for f, _ in cfg.validate()], f"{key} = {value} was accepted"
    if desc.kind != "int":
        cfg = RunConfig().with_overrides(base)
        setattr(cfg, desc.section, type(getattr(cfg, desc.section))(**{**vars(getattr(cfg, desc.section)),
                                                                         desc.name: math.nan}))
        assert key in [f for f, _ in cfg.validate()], f"{key} = nan was accepted"


def test_set_takes_each_value_in_its_settings_type_and_a_choice_in_any_letters():
    cfg = RunConfig().with_overrides(["optim.lr=1", "train.batch_size=8.0", "train.compile=yes",
                                      "train.precision=BF16", "optim.name='AdamW'", "train.sample_prompt=12"])
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float) and cfg.train.batch_size == 8
    assert cfg.train.compile is True and cfg.train.precision == "bf16" and cfg.optim.name == "adamw"
    assert cfg.train.sample_prompt == "12"
    with pytest.raises(ConfigError) as err:
        RunConfig().with_overrides(["train.batch_size=2.5"])
    assert err.value.problems == [("train.batch_size", "'2.5' is not a valid int")]
    problems = RunConfig().with_overrides(["train.precision='fp8'"]).validate()
    assert problems == [("train.precision", f"unknown precision 'fp8'; choose one of {', '.join(choices_of('train.precision'))}")]


def test_the_form_and_the_steer_tab_are_drawn_from_the_descriptions(qtbot):
    from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox

    from autogpt_gui.ui.app import make_app
    from autogpt_gui.ui.config_panel import ConfigPanel
    from autogpt_gui.ui.live_edit import LiveEditPanel

    make_app()
    panel, live = ConfigPanel(), LiveEditPanel()
    qtbot.addWidget(panel)
    qtbot.addWidget(live)
    shown = [s for section in SECTIONS for s in form_settings(section)]
    assert list(panel.editors) == [s.key for s in shown]
    for desc in shown:
        w = panel.editors[desc.key]
        form, cell = panel.rows[desc.key]
        label = form.labelForField(cell)
        assert isinstance(label, QLabel) and label.text() == desc.label and w.toolTip() == desc.tip
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            assert (w.minimum(), w.maximum()) == pytest.approx(desc.spin_range()), desc.key
        if isinstance(w, QComboBox) and desc.key != "train.device":
            assert [w.itemData(i) for i in range(w.count())] == list(desc.values()), desc.key
    assert list(live.editors) == list(live_keys())
    form = live.findChild(QFormLayout)
    for row, key in enumerate(live_keys()):
        label = form.itemAt(row, QFormLayout.LabelRole).widget()
        assert label.text() == setting(key).label and setting(key).tip in live.editors[key].toolTip()
        assert f"applies at the {setting(key).applies}" in live.editors[key].toolTip()


# ---- a pretrained model brings its tokenizer ----------------------------------------------------
def test_automatic_tokenizer_stays_automatic_in_toml_and_resolves_by_model_init(tmp_path):
    from autogpt_gui.config import tokenizer_kind

    cfg = RunConfig()
    assert cfg.data.tokenizer == "auto" and cfg.validate() == []
    cfg.save(tmp_path / "run.toml")
    assert 'tokenizer = "auto"' in (tmp_path / "run.toml").read_text()
    assert RunConfig.load(tmp_path / "run.toml").data.tokenizer == "auto"
    assert tokenizer_kind("auto", pretrained=True) == "model" and tokenizer_kind("auto", pretrained=False) == "char"
    assert tokenizer_kind("bpe", pretrained=False) == "bpe"
    problems = RunConfig().with_overrides(["data.tokenizer='model'"]).validate()
    assert [f for f, _ in problems] == ["data.tokenizer"] and "tokenizer of a pretrained model" in problems[0][1]


def _run_tokenizer_matches_the_models(run_folder, model_folder) -> None:
    from tokenizers import Tokenizer as HFTokenizer

    from autogpt_gui.engine.data.tokenizers import load_tokenizer

    theirs = HFTokenizer.from_file(str(model_folder / "tokenizer.json"))
    ours = load_tokenizer(run_folder / "tokenizer.json")
    text = "To be, or not to be: that is the question."
    assert ours.vocab_size == theirs.get_vocab_size() and ours.encode(text) == theirs.encode(text).ids


def test_train_with_only_model_init_reads_text_with_the_models_tokenizer(tiny_gpt2, capsys):
    code = cli.main(["train", "--set", f"model.init='{tiny_gpt2}'", *[a for s in QUICK for a in ("--set", s)]])
    out = capsys.readouterr()
    assert code == 0, out.err
    (run,) = [p for p in paths.runs_dir().iterdir() if p.is_dir()]
    assert "finished at step 6" in out.out + out.err
    assert RunConfig.load(run / "config.toml").data.tokenizer == "auto"
    _run_tokenizer_matches_the_models(run, tiny_gpt2)


def test_an_explicit_tokenizer_other_than_the_models_is_refused_at_its_field(tiny_gpt2, capsys):
    code = cli.main(["train", "--set", f"model.init='{tiny_gpt2}'", "--set", "data.tokenizer=char",
                     *[a for s in QUICK for a in ("--set", s)]])
    err = capsys.readouterr().err
    assert code == 2 and "data.tokenizer: a pretrained model reads text with its own tokenizer" in err, err
    assert not paths.runs_dir().exists() or not any(paths.runs_dir().iterdir())


def test_the_window_picks_the_automatic_tokenizer_for_a_pretrained_model_and_trains(qtbot, make_window, tiny_gpt2):
    from pathlib import Path

    from PySide6.QtCore import Qt

    w = make_window([*QUICK, "data.tokenizer='char'"])
    combo = w.config_panel.editors["data.tokenizer"]
    assert combo.currentData() == "char" and combo.itemText(combo.findData("auto")) == "Automatic (char)"
    init = w.config_panel.editors["model.init"]
    init.line.setText(str(tiny_gpt2))
    init.line.editingFinished.emit()
    assert combo.currentData() == "auto" and combo.currentText() == "Automatic (the model's own)"
    assert not combo.isEnabled() and w.controls.start.isEnabled(), w.controls.why.text()
    qtbot.mouseClick(w.controls.start, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.worker is None and "Finished at step 6" in w.controls.status.text(), timeout=120_000)
    _run_tokenizer_matches_the_models(Path(w.run_path), tiny_gpt2)
    init.line.setText("")
    init.line.editingFinished.emit()
    assert combo.currentData() == "auto" and combo.currentText() == "Automatic (char)" and combo.isEnabled()


@pytest.mark.parametrize("example", ["shakespeare", "python-docs"])
def test_the_form_and_the_examples_train_with_the_one_recommended_recipe(example):
    """config.RECOMMENDED owns the recipe; the examples that use it must say the same, field by field."""
    from autogpt_gui.config import RECOMMENDED
    from autogpt_gui.resources import resource_path

    shipped, form = RunConfig.load(resource_path("configs", f"{example}.toml")), RunConfig.recommended()
    for assignment in RECOMMENDED:
        section, key = assignment.split("=", 1)[0].split(".")
        assert getattr(getattr(shipped, section), key) == getattr(getattr(form, section), key), assignment
    assert shipped.model == form.model  # the preset's block kind and shape too
