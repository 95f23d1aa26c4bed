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

from xcb import debian_package, not_carried

ROOT = Path(__file__).resolve().parent.parent
NAME = "autogpt-gui"


BUDGET_MIB = 620  # what `du -sm dist/autogpt-gui` may print for the CPU bundle on Linux
CONSTRAINTS = ROOT / "packaging" / "constraints.txt"


def disk_usage_mib(path: Path) -> int:
    """What `du -sm` prints: blocks allocated on disk, hard links counted once, rounded up to MiB."""
    seen, total = set(), 0
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        st = p.lstat()
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return -(-total // 2**20)


def constraint_mismatches() -> list[str]:
    """Installed packages whose version differs from packaging/constraints.txt (the bundle's pins)."""
    import re
    from importlib import metadata

    out = []
    for line in CONSTRAINTS.read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line)
        if not found:
            continue
        name, pinned = found.groups()
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # not part of this environment (a test-only tool, another platform's helper)
        if have.split("+")[0] != pinned:
            out.append(f"{name} {have} (pinned {pinned})")
    return out


def build(onefile: bool = False, dist: Path | None = None) -> Path:
    dist = dist or ROOT / "dist"
    env = {**os.environ, "AUTOGPT_ONEFILE": "1" if onefile else "0"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                    "--distpath", str(dist), "--workpath", str(ROOT / "build" / "pyinstaller"),
                    str(ROOT / "packaging" / f"{NAME}.spec")], check=True, env=env, cwd=ROOT)
    out = dist / (NAME + (".exe" if sys.platform == "win32" else "")) if onefile else dist / NAME
    size = disk_usage_mib(out)
    print(f"[autogpt-gui] built {out} in {time.perf_counter() - t0:.0f}s: {size} MiB on disk (du -sm; "
          f"budget {BUDGET_MIB} MiB for the CPU bundle)", flush=True)
    if sys.platform.startswith("linux") and out.is_dir():
        report_x_libraries(out)
    return out


def report_x_libraries(bundle: Path) -> None:
    """Say whether the bundle carries the X libraries of Qt's xcb plugin, and which packages a desktop needs if not."""
    missing = not_carried(bundle)
    if missing:
        print(f"[autogpt-gui] X libraries not carried (this machine lacks them): {', '.join(missing)}. A Linux desktop "
              f"then needs: sudo apt-get install {' '.join(debian_package(m) for m in missing)} (or install them here "
              "and rebuild)", flush=True)
    else:
        print("[autogpt-gui] X libraries: the bundle carries every one Qt's xcb plugin links (libxcb1 and GL are the "
              "desktop's own)", flush=True)


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
        shakespeare = ["train", "--config", "shakespeare", "--set", "train.max_steps=20", "--set",
                       "optim.warmup_steps=2", "--set", "train.eval_interval=10", "--set", "train.sample_tokens=20"]
        for args in (["--version"], ["--selftest"], shakespeare, ["--screenshot", str(Path(home) / "window.png")]):
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
    ap.add_argument("--unpinned", action="store_true",
                    help="build even if installed versions differ from packaging/constraints.txt")
    args = ap.parse_args()
    mismatches = constraint_mismatches()
    if mismatches and not args.unpinned:
        print("installed versions differ from packaging/constraints.txt, so this bundle could not be rebuilt the "
              "same: " + ", ".join(mismatches) + ".\nInstall with: pip install -c packaging/constraints.txt "
              "-e '.[package]' (or pass --unpinned)", file=sys.stderr)
        return 2
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
