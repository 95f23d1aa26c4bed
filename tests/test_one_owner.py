"""Each fact has one owner: settings that always reload, one run length, one model shape, one metrics schema."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from autogpt_gui.config import ModelConfig, RunConfig
from autogpt_gui.engine.data.loaders import WindowDataset
from autogpt_gui.engine.model.gpt import AutoGPTModel, GPTConfig
from autogpt_gui.engine.train.events import EvalMetrics, StepMetrics
from autogpt_gui.engine.train.trainer import Trainer
from autogpt_gui.errors import ConfigError

FREE_TEXT = ("name", "data.path", "data.text_field", "train.sample_prompt")
NASTY = ["run\rone", "a\x01b", "del\x7f", "esc\x1b[31m", 'quo"te\'s', "back\\slash\\\\", "new\nline\r\n",
         "日本語のテキスト", "emoji 🦜 and ñ", "tab\there", "\x00nul", "[section]\nkey = 1", '"""', "'''"]


def _with(cfg: RunConfig, key: str, value: str) -> RunConfig:
    if key == "name":
        return dataclasses.replace(cfg, name=value)
    section, field = key.split(".")
    return dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{field: value})})


@pytest.mark.parametrize("key", FREE_TEXT)
@pytest.mark.parametrize("value", NASTY)
def test_every_free_text_setting_saves_and_loads_back_equal(tmp_path, key, value):
    cfg = _with(RunConfig(), key, value)
    cfg.save(tmp_path / "config.toml")
    assert RunConfig.load(tmp_path / "config.toml") == cfg


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(FREE_TEXT), value=st.text(max_size=40))
def test_generated_text_round_trips_through_toml(tmp_path, key, value):
    cfg = _with(RunConfig(), key, value)
    cfg.save(tmp_path / "config.toml")
    assert RunConfig.load(tmp_path / "config.toml") == cfg


def _seed_trainer(**kw) -> Trainer:
    data = torch.randint(0, 20, (400,))
    model = AutoGPTModel(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=1, n_embd=16))
    loader = DataLoader(WindowDataset(data, 8), batch_size=4)
    return Trainer(model, torch.optim.Adam(model.parameters()), loader, loader, device="cpu", **kw)


@pytest.mark.parametrize("kw,field", [({"max_steps": -5}, "train.max_steps"), ({"epochs": -3}, "train.epochs")])
def test_a_negative_length_is_refused_naming_the_setting(kw, field):
    with pytest.raises(ConfigError) as err:
        _seed_trainer(**kw)
    assert err.value.field == field and "must be zero" in str(err.value)


def test_no_length_at_all_is_refused_when_training_starts():
    trainer = _seed_trainer(epochs=0, max_steps=0)  # the seed's call gives the length to train()
    with pytest.raises(ConfigError, match="max steps or epochs"):
        trainer.train()
    with pytest.raises(ConfigError, match="max steps or epochs"):
        trainer.train(0)
    assert trainer.step == 0


def test_the_planned_length_is_the_same_for_trainer_and_progress():
    trainer = _seed_trainer()
    result = trainer.train(2)  # 50 windows of 8 in batches of 4: 13 steps an epoch
    assert result.step == 26 and trainer.max_steps == 26


def test_one_model_shape_shared_by_config_checkpoint_and_model():
    assert GPTConfig is ModelConfig
    shape = ModelConfig.from_preset("nano", vocab_size=65)
    assert AutoGPTModel(shape).config is shape


def test_chart_columns_come_from_the_metrics_records():
    from autogpt_gui.ui.charts import EVAL_COLUMNS, STEP_COLUMNS

    assert STEP_COLUMNS == [f.name for f in dataclasses.fields(StepMetrics)]
    assert EVAL_COLUMNS == [f.name for f in dataclasses.fields(EvalMetrics)]
