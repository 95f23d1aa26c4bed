"""autogpt-gui: train a GPT-style language model point-and-click, and keep what it learned.

The public face: `from autogpt_gui import Trainer, AutoGPTModel, RunConfig, load_model`. The names are
resolved on first use, so importing `autogpt_gui.config` or the window's modules loads no torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "Trainer": "autogpt_gui.engine.train.trainer",
    "AutoGPTModel": "autogpt_gui.engine.model.gpt",
    "RunConfig": "autogpt_gui.config",
    "load_model": "autogpt_gui.engine.load",
}
__all__ = ["Trainer", "AutoGPTModel", "RunConfig", "load_model", "__version__"]

if TYPE_CHECKING:
    from autogpt_gui.config import RunConfig
    from autogpt_gui.engine.load import load_model
    from autogpt_gui.engine.model.gpt import AutoGPTModel
    from autogpt_gui.engine.train.trainer import Trainer


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'autogpt_gui' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
