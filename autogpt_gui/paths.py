"""Where user files live: the platform's user folders (appdirs), never beside the program.

AUTOGPT_GUI_HOME, when set, puts everything under one folder (tests, portable installs).
"""
from __future__ import annotations

import os
from pathlib import Path

import appdirs

APP = "autogpt-gui"


def _base(kind: str) -> Path:
    home = os.environ.get("AUTOGPT_GUI_HOME")
    if home:
        return Path(home) / kind
    finder = {"data": appdirs.user_data_dir, "cache": appdirs.user_cache_dir}.get(kind, appdirs.user_config_dir)
    path = Path(finder(APP, False))
    if not path.is_absolute():  # an empty XDG_*_HOME counts as unset (XDG spec); appdirs returns it as is
        fallback = {"data": ".local/share", "cache": ".cache"}.get(kind, ".config")
        path = Path.home() / fallback / APP
    return path


def runs_dir() -> Path:
    """Folder holding one sub-folder per training run."""
    return _ensure(_base("data") / "runs")


def cache_dir() -> Path:
    """Folder of token caches, keyed by source content and tokenizer."""
    return _ensure(_base("cache") / "tokens")


def settings_file() -> Path:
    """The GUI's remembered settings (last configuration, window layout)."""
    return _ensure(_base("config")) / "settings.toml"


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
