"""The standalone bundle builds, and its self test passes read-only, from elsewhere, with an empty HOME."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bundle_builds_and_passes_its_self_test(tmp_path):
    if shutil.which("strip") is None:
        pytest.skip("binutils' strip is needed to keep the bundle within its size budget")
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--smoke", "--dist",
                           str(tmp_path / "dist")], capture_output=True, text=True, timeout=900)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "self test passed" in out and "autogpt-gui 0.1.0" in out
    assert "Tiny Shakespeare (built in)" in out and "finished at step 20" in out  # the built-in corpus ships
    size_mib = int(out.split("[autogpt-gui] built ")[1].split(": ")[1].split(" MiB on disk")[0])
    assert size_mib <= 620  # what `du -sm` prints; budget in packaging/build.py
    user_data = out.split("user data: ")[1].splitlines()[0]
    assert user_data.startswith("/") and "autogpt-gui" in user_data  # under HOME, never beside the bundle
    # the bundle was read-only: make it writable again so tmp_path can be removed
    for p in [tmp_path, *tmp_path.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | 0o200)
