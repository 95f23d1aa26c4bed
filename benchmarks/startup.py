"""Time from launching `autogpt-gui` to a usable window (torch loads later, in the background).

Target: under 2 seconds.   QT_QPA_PLATFORM=offscreen python benchmarks/startup.py [--smoke]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CODE = r"""
import time, sys
t0 = float(sys.argv[1])
from autogpt_gui.ui.app import make_app
app = make_app()
from autogpt_gui.ui.main_window import MainWindow
w = MainWindow(); w.resize(1280, 800); w.show(); app.processEvents()
ready = time.time() - t0
print(f"{ready:.3f}")
w.wait_for_threads(); w.close()
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true",
                    help="one launch (the test suite runs it): the figure is printed, the target is not judged")
    args = ap.parse_args()
    launches = 1 if args.smoke else 3
    times = []
    with tempfile.TemporaryDirectory(prefix="autogpt-startup-") as home:
        env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"), "AUTOGPT_GUI_HOME": home}
        for _ in range(launches):
            out = subprocess.run([sys.executable, "-c", CODE, repr(time.time())], env=env, capture_output=True,
                                 text=True, check=True).stdout.split()
            times.append(float(out[0]))
    best, worst = min(times), max(times)
    print(f"process start to usable window: best {best:.2f}s, worst {worst:.2f}s of {launches} (target < 2 s); "
          "torch is imported afterwards by a background thread (device list)")
    return 0 if args.smoke or worst < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
