"""Build the standalone app with PyInstaller from packaging/autogpt-gui.spec.

    python packaging/build.py              # one-folder bundle: dist/autogpt-gui/autogpt-gui
    python packaging/build.py --onefile    # a single executable: dist/autogpt-gui(.exe)
    python packaging/build.py --smoke      # then run the bundle's --selftest, read-only, elsewhere

Prints the wall time and the bundle's size.
"""
from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "autogpt-gui"


def folder_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build(onefile: bool = False, dist: Path | None = None) -> Path:
    dist = dist or ROOT / "dist"
    env = {**os.environ, "AUTOGPT_ONEFILE": "1" if onefile else "0"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                    "--distpath", str(dist), "--workpath", str(ROOT / "build" / "pyinstaller"),
                    str(ROOT / "packaging" / f"{NAME}.spec")], check=True, env=env, cwd=ROOT)
    out = dist / (NAME + (".exe" if sys.platform == "win32" else "")) if onefile else dist / NAME
    print(f"[autogpt-gui] built {out} in {time.perf_counter() - t0:.0f}s: {folder_size(out) / 2**20:.0f} MB "
          f"(budget 650 MB for the CPU bundle)", flush=True)
    return out


def make_read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        if not p.is_symlink():
            mode = p.stat().st_mode
            p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def smoke(bundle: Path) -> int:
    """Run --version and --selftest from a foreign directory, HOME empty, the bundle read-only."""
    exe = bundle / NAME if bundle.is_dir() else bundle
    make_read_only(bundle)
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as cwd:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGPT_GUI", "PYTHON", "XDG_"))}
        env.update(HOME=home, QT_QPA_PLATFORM="offscreen")
        for args in (["--version"], ["--selftest"], ["--screenshot", str(Path(home) / "window.png")]):
            t0 = time.perf_counter()
            done = subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True)
            print(f"$ {exe.name} {' '.join(args)}  (exit {done.returncode}, {time.perf_counter() - t0:.1f}s)")
            print(done.stdout.strip())
            if done.returncode:
                print(done.stderr[-4000:])
                return done.returncode
        shot = Path(home) / "window.png"
        if not shot.exists():
            print("no screenshot written")
            return 1
        keep = ROOT / "build" / "frozen-window.png"
        shutil.copyfile(shot, keep)
        print(f"screenshot of the frozen window: {keep}")
        leftovers = sorted(str(p.relative_to(home)) for p in Path(home).rglob("*") if p.is_file())
        print(f"user files written under HOME: {len(leftovers)} (e.g. {leftovers[:3]})")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--onefile", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="run the bundle's self test after building")
    ap.add_argument("--dist", type=Path, default=None)
    args = ap.parse_args()
    dist = args.dist or ROOT / "dist"
    if dist.exists():  # an earlier smoke run leaves it read-only
        for p in [dist, *dist.rglob("*")]:
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(dist)
    bundle = build(args.onefile, dist)
    return smoke(bundle) if args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
