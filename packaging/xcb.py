"""The X libraries Qt's xcb platform plugin links (found with `ldd`), so a Linux bundle can carry them.

Qt's wheels bundle Qt but not the small xcb helper libraries its X11 plugin links: a desktop that
lacks one (libxcb-icccm4 and libxcb-keysyms1 are the usual ones) refuses to load the plugin with a
message that names only libxcb-cursor0. The spec adds whichever the build machine has; build.py
checks the built bundle and names the Debian / Ubuntu packages of any it could not carry.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

# the X client libraries; libxcb.so.1 itself stays the system's (PyInstaller's rule: every X
# desktop has it, and its ABI goes with the display's libraries, as the GL stack's does)
X_LIBRARY = re.compile(r"^lib(xcb-[\w-]+|X11(-xcb)?|Xau|Xdmcp|xkbcommon(-x11)?)\.so\.\d+$")
PLUGIN = "libqxcb.so"
QPA_LIBRARY = "libQt6XcbQpa.so.6"


def linked(binary: Path, library_path: Path | None = None) -> dict[str, str | None]:
    """What `ldd` says each shared library `binary` needs (transitively) resolves to; None for 'not found'."""
    env = {**os.environ, "LD_LIBRARY_PATH": str(library_path)} if library_path else None
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env, check=False).stdout
    found: dict[str, str | None] = {}
    for line in out.splitlines():
        name, arrow, target = line.strip().partition(" => ")
        if arrow:
            path = target.split(" (")[0].strip()
            found[name] = None if path == "not found" else path
    return found


def x_libraries(binaries: list[Path], library_path: Path | None = None) -> dict[str, str | None]:
    """The X libraries among what `binaries` link, by soname, each with its path here (None: not found)."""
    found: dict[str, str | None] = {}
    for binary in binaries:
        for name, path in linked(binary, library_path).items():
            if X_LIBRARY.match(name) and (name not in found or found[name] is None):
                found[name] = path
    return found


def pyside_xcb_binaries() -> list[Path]:
    """The installed PySide6's xcb platform plugin and the Qt library behind it (empty where there are none)."""
    import PySide6

    qt = Path(PySide6.__file__).resolve().parent / "Qt"
    return [p for p in (qt / "plugins" / "platforms" / PLUGIN, qt / "lib" / QPA_LIBRARY) if p.is_file()]


def debian_package(soname: str) -> str:
    """The Debian / Ubuntu package that ships a library (its policy names them so): libxcb-icccm.so.4 -> libxcb-icccm4."""
    stem, _, version = soname.partition(".so.")
    major = version.split(".")[0]
    return stem.lower() + ("-" if stem[-1].isdigit() else "") + major


def not_carried(bundle: Path) -> list[str]:
    """The X libraries the bundle's xcb plugin needs that the bundle does not hold (it falls back on the system's)."""
    plugins = sorted(bundle.rglob(PLUGIN))
    if not plugins:
        return []
    contents = plugins[0].parents[4]  # <contents>/PySide6/Qt/plugins/platforms/libqxcb.so
    needed = x_libraries([plugins[0], *bundle.rglob(QPA_LIBRARY)], contents)
    inside = bundle.resolve()
    return sorted(name for name, path in needed.items() if path is None or not Path(path).resolve().is_relative_to(inside))
