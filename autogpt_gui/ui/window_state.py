"""The main window's memory and its way out: settings and last configuration restored and saved, and
closing that stops a run with a checkpoint and joins every thread first. A mixin of MainWindow."""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from autogpt_gui import paths
from autogpt_gui.config import RunConfig
from autogpt_gui.errors import ConfigError


class WindowState:
    """Restore and save what the window remembers; close without losing a run."""

    def _restore_settings(self) -> None:
        last = paths.settings_file().with_name("last_config.toml")
        if last.exists():
            try:
                self.set_config(RunConfig.load(last))
            except ConfigError:
                self.set_config(RunConfig.recommended())
        else:
            self.set_config(RunConfig.recommended())
        for key, splitter in (("main", self.main), ("right", self.right)):
            state = self.settings.value(f"splitter/{key}")
            if state is not None:
                splitter.restoreState(state)
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def _save_last_config(self) -> None:
        try:
            self.config_panel.config().save(paths.settings_file().with_name("last_config.toml"))
        except OSError:
            pass

    def close_for_signal(self, reason: str) -> None:
        """The process is being ended (SIGTERM, logout): stop and save without asking, then close."""
        self._end_reason = reason
        self.close()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if getattr(self.worker, "follows", False):  # a run of another process: it goes on training
            self.worker.stop_following()
            self.worker = None
        if self.worker is not None:
            reason = self._end_reason
            if not reason:
                answer = QMessageBox.question(self, "Training is running",
                                              "Stop training, save a checkpoint and quit?")
                if answer != QMessageBox.Yes:
                    event.ignore()
                    return
            self.worker.request("stop", reason or "the window was closed")
        self._preview_timer.stop()
        self.background.cancel_all()
        self.wait_for_threads()
        self._save_last_config()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("splitter/main", self.main.saveState())
        self.settings.setValue("splitter/right", self.right.saveState())
        self.settings.sync()
        event.accept()

    def wait_for_threads(self, timeout_s: float = 120.0) -> bool:
        """Join every worker thread, letting their last signals through; True when all ended."""
        return self.background.wait(timeout_s)
