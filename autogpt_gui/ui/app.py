"""Start the Qt application: style, palette, main window; or render it offscreen to a PNG."""
from __future__ import annotations

import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon, QPalette
from PySide6.QtWidgets import QApplication

from autogpt_gui.resources import resource_path


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("autogpt-gui")
    app.setOrganizationName("autogpt-gui")
    app.setStyle("Fusion")  # follows the system's light or dark scheme
    qss = resource_path("styles", "app.qss")
    if qss.exists():
        app.setStyleSheet(qss.read_text())
    icon = resource_path("icons", "autogpt-gui.png")
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    import pyqtgraph as pg

    pal = app.palette()
    pg.setConfigOptions(antialias=False, background=pal.color(QPalette.Base), foreground=pal.color(QPalette.Text))
    return app


def end_on_signals(app: QApplication, window) -> None:
    """SIGTERM, SIGHUP (logout, shutdown, a closed terminal) and SIGINT close the window as Stop does:
    the worker finishes its step and saves, the thread is joined, and the app exits with 128 + N.

    Python runs signal handlers only between bytecodes of the main thread, so a timer gives it a
    moment a few times a second while Qt's event loop waits in C++.
    """
    import signal

    def handle(signum, frame):
        name = signal.Signals(signum).name
        QTimer.singleShot(0, lambda: (window.close_for_signal(f"interrupted by {name}"), app.exit(128 + signum)))

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, handle)
    ticker = QTimer(app, interval=200)
    ticker.timeout.connect(lambda: None)
    ticker.start()


def serve(app: QApplication, window) -> int:
    """Run the window until it closes or the process is told to end, then leave without Python's teardown.

    By then the window has saved its settings, stopped and joined every thread; what is left are Qt objects
    whose destruction order at interpreter exit is not ours to choose (PySide6 can crash there), so the
    process ends here with the window's exit code.
    """
    import os

    end_on_signals(app, window)
    code = app.exec()
    window.wait_for_threads()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_app(screenshot: str | None = None, size: str = "1280x800", steps: int = 0, follow: str | None = None) -> int:
    """Open the window; with screenshot, render it offscreen (optionally after N training steps) and exit."""
    t0 = time.perf_counter()
    app = make_app()
    from autogpt_gui.ui.main_window import MainWindow

    window = MainWindow()
    w, h = (int(v) for v in size.lower().split("x"))
    window.resize(w, h)
    window.show()
    app.processEvents()
    print(f"window ready in {time.perf_counter() - t0:.2f}s", file=sys.stderr)
    if follow:
        window.follow(follow)
    if not screenshot:
        return serve(app, window)
    if steps:
        cfg = window.config_panel.config()
        cfg.train.max_steps = max(steps, cfg.train.max_steps)
        window.config_panel.set_config(cfg)
        window.start()
        deadline = time.monotonic() + 600
        while (window.charts.steps.n == 0 or window.charts.steps.col("step")[-1] < steps) \
                and window.worker is not None and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        window._request("pause")
        for _ in range(50):
            app.processEvents()
            time.sleep(0.01)
    window.grab().save(screenshot)
    print(f"saved {screenshot}", file=sys.stderr)
    if window.worker is not None:
        window.worker.request("stop")
    window.wait_for_threads()
    window.close()
    return 0


def smoke_window() -> str:
    """Build the window offscreen and report its size (used by --selftest)."""
    app = make_app()
    from autogpt_gui.ui.main_window import MainWindow

    window = MainWindow()
    window.resize(1280, 800)
    window.show()
    app.processEvents()
    image = window.grab()
    window.wait_for_threads()
    window.close()
    return f"main window rendered {image.width()}x{image.height()}"
