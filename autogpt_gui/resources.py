"""One place that knows where resources/ is: beside the package from source, inside the bundle frozen."""
from __future__ import annotations

import sys
from pathlib import Path


def resources_root() -> Path:
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "resources"
    packaged = Path(__file__).resolve().parent / "resources"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Path of a bundled resource, e.g. resource_path('configs', 'addition.toml')."""
    return resources_root().joinpath(*parts)
