"""The main window: builds the panels and wires their signals to the workers. No training logic."""
from __future__ import annotations

import copy
import time
from dataclasses import asdict
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QThread, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from autogpt_gui import paths
from autogpt_gui.config import RunConfig
from autogpt_gui.engine.run.checkpoints import CheckpointFolder
from autogpt_gui.engine.run.runs import Run
from autogpt_gui.errors import ConfigError
from autogpt_gui.ui import worker as workers
from autogpt_gui.ui.charts import ChartsPanel
from autogpt_gui.ui.checkpoints_panel import CheckpointsPanel
from autogpt_gui.ui.config_panel import ConfigPanel
from autogpt_gui.ui.controls import RunControls
from autogpt_gui.ui.data_panel import DataPanel
from autogpt_gui.ui.follower import RunFollower
from autogpt_gui.ui.jobs import Jobs
from autogpt_gui.ui.live_edit import LiveEditPanel
from autogpt_gui.ui.runs_panel import RunsPanel
from autogpt_gui.ui.samples_panel import SamplesPanel
from autogpt_gui.ui.widgets import Banner
from autogpt_gui.ui.window_chat import WindowChat
from autogpt_gui.ui.window_state import WindowState
from autogpt_gui.ui.window_tools import WindowTools


class MainWindow(WindowState, WindowTools, WindowChat, QMainWindow):
    """Configuration on the left; controls, charts and tabs (samples, checkpoints, data, runs, log) on the right."""

    def __init__(self, settings_path: Path | None = None):
        super().__init__()
        self.setWindowTitle("autogpt-gui")
        self.settings = QSettings(str(settings_path or paths.settings_file().with_suffix(".ini")), QSettings.IniFormat)
        self.worker: workers.TrainingWorker | None = None
        self.train_thread: QThread | None = None
        self.run_path: str | None = None
        self._end_reason = ""
        self._preview_timer = QTimer(self, singleShot=True, interval=300)
        self._preview_timer.timeout.connect(self.preview_data)

        self.config_panel = ConfigPanel()
        self.controls = RunControls()
        self.charts = ChartsPanel()
        self.samples = SamplesPanel()
        self.checkpoints = CheckpointsPanel()
        self.data = DataPanel()
        self.runs = RunsPanel()
        self.live = LiveEditPanel()
        self.background = Jobs(self, self.show_error)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.error_banner = Banner("errorBanner")
        self.resume_banner = Banner("resumeBanner")

        self.tabs = QTabWidget()
        for widget, title in ((self.samples, "Samples && playground"), (self.live, "Steer run"),
                              (self.checkpoints, "Checkpoints"), (self.data, "Data"), (self.runs, "Runs"),
                              (self.log, "Log")):
            self.tabs.addTab(widget, title)
        top = QWidget()
        tv = QVBoxLayout(top)
        tv.setContentsMargins(0, 0, 0, 0)
        tv.addWidget(self.resume_banner)
        tv.addWidget(self.error_banner)
        tv.addWidget(self.controls)
        tv.addWidget(self.charts, 1)
        self.right = QSplitter(Qt.Vertical)
        self.right.addWidget(top)
        self.right.addWidget(self.tabs)
        self.right.setSizes([520, 300])
        self.main = QSplitter(Qt.Horizontal)
        self.main.addWidget(self.config_panel)
        self.main.addWidget(self.right)
        self.main.setSizes([360, 920])
        self.main.setStretchFactor(1, 1)
        self.setCentralWidget(self.main)
        self._build_menu()
        self._wire()
        self._restore_settings()
        self.statusBar().showMessage("Ready")
        self._offer_interrupted()
        QTimer.singleShot(0, self._probe_devices)

    # ---- construction ------------------------------------------------------------------------
    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (("&Open configuration…", QKeySequence.Open, self.open_config),
                                     ("&Follow run folder…", "Ctrl+Shift+F", self._choose_followed),
                                     ("Save configuration &as…", "Ctrl+Shift+S", self.save_config_as),
                                     ("&Quit", QKeySequence.Quit, self.close)):
            action = QAction(text, self)
            action.setShortcut(shortcut)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About", self)
        about.triggered.connect(lambda: QMessageBox.about(self, "autogpt-gui", _about_text()))
        help_menu.addAction(about)

    def _wire(self) -> None:
        self.config_panel.changed.connect(self._config_changed)
        c = self.controls
        c.start_requested.connect(self.start)
        c.pause_requested.connect(lambda: self._request("pause"))
        c.resume_requested.connect(lambda: self._request("resume"))
        c.stop_requested.connect(lambda: self._request("stop"))
        c.save_requested.connect(lambda: self._request("save"))
        c.evaluate_requested.connect(lambda: self._request("evaluate"))
        self.checkpoints.save_requested.connect(lambda: self._request("save"))
        self.checkpoints.resume_requested.connect(self.resume_from)
        self.checkpoints.export_requested.connect(self.export_checkpoint)
        self.checkpoints.branch_requested.connect(self.branch_from)
        self.checkpoints.sample_requested.connect(self.sample_checkpoint)
        self.charts.checkpoint_clicked.connect(self.checkpoints.offer)
        self.samples.generate_requested.connect(self.generate)
        self.samples.chat_requested.connect(self.chat)
        self.live.edit_requested.connect(lambda changes: self.worker and self.worker.request("edit", changes))
        self.live.extend_requested.connect(self.extend_run)
        self.config_panel.find_lr_requested.connect(self.find_lr)
        self.data.tokenize_requested.connect(self.tokenize)
        self.data.cancel_requested.connect(lambda: self.background.cancel("tokenize"))
        self.runs.open_requested.connect(self.open_run)
        self.runs.follow_requested.connect(self.follow)
        self.runs.resume_requested.connect(lambda p: self.resume_from(str(Run(p).files.last)))
        self.runs.overlays_changed.connect(self.charts.set_overlays)
        self.error_banner.action.hide()
        self.resume_banner.action.clicked.connect(self._resume_interrupted)

    # ---- configuration -------------------------------------------------------------------------
    def _config_changed(self, cfg: RunConfig) -> None:
        problems = self.config_panel.problems()
        self.config_panel.show_problems(problems)
        self.controls.set_start_allowed(problems)
        self.samples.set_base(cfg.model.init)
        self.show_chat_source(cfg.data.source == "chat")
        if not any(f.startswith("data.") for f, _ in problems):
            self._schedule_preview()

    def set_config(self, cfg: RunConfig) -> None:
        self.config_panel.set_config(copy.deepcopy(cfg))
        self._config_changed(self.config_panel.config())

    def open_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open configuration", "", "TOML (*.toml)")
        if path:
            try:
                self.set_config(RunConfig.load(path))
            except ConfigError as err:
                self.show_error(str(err))

    def save_config_as(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save configuration", "run.toml", "TOML (*.toml)")
        if path:
            self.config_panel.config().save(path)

    def _schedule_preview(self) -> None:
        self._preview_timer.start()

    def _probe_devices(self) -> None:
        self.background.start("devices", workers.devices_job, self.config_panel.set_devices, lambda m, f: None)

    def preview_data(self) -> None:
        cfg = copy.deepcopy(self.config_panel.config())
        self.background.start("preview", workers.preview_job(cfg), self._previewed,
                        lambda msg, field: self.data.show_error(msg))

    def tokenize(self) -> None:
        cfg = copy.deepcopy(self.config_panel.config())
        self.tabs.setCurrentWidget(self.data)
        if cfg.data.source == "chat":
            self.tokenize_masks()
            return
        self.data.set_busy(True)

        def done(info):
            self.data.show_tokens(info)
            self.config_panel.set_data_info(info["vocab_size"], info["train_tokens"])

        def failed(msg, field):
            self.data.set_busy(False)
            self.data.show_progress("cancelled" if msg == "cancelled" else "failed", 0.0)
            if msg != "cancelled":
                self.data.show_error(msg)

        self.background.start("tokenize", workers.tokenize_job(cfg), done, failed, self.data.show_progress)

    # ---- training -----------------------------------------------------------------------------
    def start(self) -> None:
        problems = self.config_panel.problems()
        if problems or self.worker is not None:
            return
        cfg = copy.deepcopy(self.config_panel.config())
        self._save_last_config()
        self.charts.reset()
        self.samples.clear_samples()
        gpus = sum(1 for i in range(self.config_panel.editors["train.device"].count())
                   if str(self.config_panel.editors["train.device"].itemData(i)).split(":")[-1].isdigit())
        if cfg.train.device == "cuda:all":  # a torchrun process group, followed through its run folder
            run = Run.create(cfg, paths.runs_dir())
            self.follow(str(run.path), workers.launch_group(str(run.path), gpus))
            return
        self._launch(workers.TrainingWorker(cfg))

    def resume_from(self, checkpoint: str) -> None:
        """Continue the run that holds `checkpoint` from it, in this window."""
        if self.worker is not None:
            self.show_error("A run is already training; stop it before resuming another.")
            return
        run = Run(Path(checkpoint).parent.parent)
        try:
            cfg = run.config()
        except ConfigError as err:
            self.show_error(f"cannot resume {run.id}: {err}")
            return
        self.config_panel.set_config(copy.deepcopy(cfg))
        self._show_run_history(run)
        self._launch(workers.TrainingWorker(cfg, str(run.path), checkpoint))

    def _choose_followed(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Follow the run in folder (trained by another process)",
                                                str(paths.runs_dir()))
        if path:
            self.follow(path)

    def branch_from(self, checkpoint: str) -> None:
        """A new run that starts from `checkpoint` with the form's settings; it records its parent and step."""
        problems = self.config_panel.problems()
        if self.worker is not None or problems:
            self.show_error("stop the running run first" if self.worker is not None else
                            f"fix the configuration first ({problems[0][0]}: {problems[0][1]})")
            return
        parent, cfg = Run(Path(checkpoint).parent.parent), copy.deepcopy(self.config_panel.config())
        entry = next((c for c in self.checkpoints.folder.list() if c.path == checkpoint), None)
        run = Run.create(cfg, paths.runs_dir())
        run.write_branch(parent, Path(checkpoint), entry.step if entry else 0)
        self.charts.reset()
        self.samples.clear_samples()
        self._launch(workers.TrainingWorker(cfg, str(run.path), checkpoint))

    def extend_run(self, steps: int) -> None:
        """Continue the run shown (finished or stopped) for `steps` more steps from its last checkpoint."""
        if self.worker is None and self.run_path and Run(self.run_path).has_checkpoint():
            run = Run(self.run_path)
            self._show_run_history(run)
            self._launch(workers.TrainingWorker(run.config(), str(run.path), str(run.files.last),
                                                extend=steps))

    def follow(self, path: str, process=None) -> None:
        """Watch and steer a run that trains in another process, through its run folder; closing the window
        leaves it training."""
        run = self._take_run(path, "follow", "A run is training in this window; stop it before following another.")
        if run is None:
            return
        self.charts.reset()
        self.samples.clear_samples()
        follower = RunFollower(run, self, process)
        self._connect(follower)
        follower.start()

    def _launch(self, worker: workers.TrainingWorker) -> None:
        self._connect(worker)
        self.train_thread = workers.start_thread(worker, self)
        self.background.track(self.train_thread, worker)

    def _connect(self, worker) -> None:
        self.error_banner.hide()
        self.resume_banner.hide()
        self.config_panel.show_problems([])
        self.worker = worker
        worker.data_progressed.connect(self._data_progress)
        worker.started.connect(self._started)
        worker.stepped.connect(self._stepped)
        worker.evaluated.connect(self._evaluated)
        workers.deliver(worker.checkpoint_saved, lambda c: (self.checkpoints.refresh(), self.charts.add_marker(c)), self)
        worker.sampled.connect(self.samples.add_sample)
        worker.marked.connect(self.charts.add_marker)
        if hasattr(worker, "oom_offered"):  # a run of this window (a followed one decides for itself)
            worker.oom_offered.connect(self.offer_halving)
            worker.chat_answered.connect(self.live_answered)
        worker.logged.connect(self._logged)
        worker.state_changed.connect(self._state_changed)
        worker.errored.connect(self.show_error)
        worker.finished.connect(self._finished)
        worker.text_generated.connect(self.samples.append_text)
        workers.deliver(worker.generation_done, lambda _: self.samples.set_busy(False), self)
        self.controls.set_running(True)
        self.checkpoints.set_training(True)
        self.controls.show_message("Preparing data…")

    def _request(self, kind: str) -> None:
        if self.worker is None:
            return
        self.worker.request(kind)
        messages = {"stop": "Stopping: saving a checkpoint…", "save": "Saving a checkpoint…",
                    "evaluate": "Evaluating…", "pause": "Pausing after this step…", "resume": "Resuming…"}
        self.controls.show_message(messages[kind])

    def _data_progress(self, phase: str, fraction: float) -> None:
        self.controls.progress.setRange(0, 1000)
        self.controls.progress.setValue(int(fraction * 1000))
        self.controls.status.setText(f"Preparing data: {phase} {fraction * 100:.0f}%")

    def _started(self, info: dict) -> None:
        self.run_path = info["run_path"]
        self.controls.run_started(info)
        self.live.load(Run(self.run_path).edited_config())  # with the edits a resumed run carries on with
        self.live.set_live(True)
        self.live.set_extendable(False)
        self.checkpoints.set_folder(self.run_path)
        self.samples.set_checkpoint(None)
        self.runs.running_path = self.run_path
        self.runs.refresh()
        self.config_panel.set_data_info(info["vocab_size"], info["train_tokens"])
        if info.get("follows"):
            return
        self._logged(f"run {info['run_id']}: {info['source']}, {info['train_tokens']:,} training tokens, "
                     f"{info['params'] / 1e6:.2f}M parameters on {info['device']}; precision "
                     f"{info['precision']} ({info['precision_reason']})")
        if info["resumed"]:
            self._logged(f"resumed at step {info['step']}, epoch {info['epoch']}, {info['tokens_seen']:,} tokens seen")

    def _stepped(self, records: list) -> None:
        self.charts.add_steps(records)
        self.controls.show_steps(records)

    def _evaluated(self, m: dict) -> None:
        self.charts.add_eval(m)
        self.statusBar().showMessage(f"step {m['step']}: validation loss {m['val_loss']:.4f} "
                                     f"(best {m['best_val_loss']:.4f})")

    def _logged(self, message: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {message}")

    def _state_changed(self, state: dict) -> None:
        self.controls.show_state(state)

    def _finished(self, info: dict) -> None:
        self.worker = None
        self.live.set_live(False, f"The run has {info['status']}; extend it to train further.")
        self.live.set_extendable(bool(self.run_path and Run(self.run_path).has_checkpoint()))
        self.controls.run_ended(info)
        self.checkpoints.set_training(False)
        self.checkpoints.refresh()
        self.runs.running_path = None
        self.runs.refresh()
        self.samples.set_busy(False)
        best = info.get("best_val_loss")
        self._logged(f"run {info['status']} at step {info['step']}"
                     + (f"; best validation loss {best:.4f}" if best is not None else ""))

    def show_error(self, message: str, field: str = "") -> None:
        """Say what went wrong in the window, next to the field when there is one."""
        self.error_banner.show_message(f"<b>Problem:</b> {message}")
        if field and field in self.config_panel.editors:
            self.config_panel.show_problems([(field, message)])
        self._logged(f"error: {message}")

    # ---- runs, checkpoints, playground ----------------------------------------------------------
    def _take_run(self, path: str, verb: str, busy: str) -> Run | None:
        """The run in path, its configuration in the form; None (with a message) while a run trains here."""
        if self.worker is not None:
            self.show_error(busy)
            return None
        run = Run(path)
        try:
            self.config_panel.set_config(run.config())
        except ConfigError as err:
            self.show_error(f"cannot {verb} {run.id}: {err}")
            return None
        return run

    def open_run(self, path: str) -> None:
        run = self._take_run(path, "open", "A run is training; stop it to open another (tick runs to compare "
                                           "their curves).")
        if run is None:
            return
        self._show_run_history(run)
        self.checkpoints.set_folder(path)
        self.run_path = path
        self.live.load(run.edited_config())
        self.live.set_extendable(run.has_checkpoint())
        self.tabs.setCurrentWidget(self.checkpoints)

    def _show_run_history(self, run: Run) -> None:
        run.remove_stale_files()
        steps, evals = run.read_metrics()
        saved = {c.step: c for c in sorted(CheckpointFolder(run.checkpoints_dir).list(), key=lambda c: c.kind != "step")
                 if c.step}  # one marker per step, its step-N.pt file where there is one
        self.charts.load_history(steps, evals, run.read_markers() + [asdict(c) for c in reversed(saved.values())])
        self.samples.clear_samples()
        for s in run.read_samples():
            self.samples.add_sample(s)

    def _offer_interrupted(self) -> None:
        stale = self.runs.interrupted()
        if stale:
            r = stale[0]
            self._interrupted = r.path
            if Run(r.path).has_checkpoint():
                self.resume_banner.show_message(f"The run <b>{r.name}</b> was interrupted at step {r.step}. "
                                                "Resume it from its last checkpoint?", "Resume")
            else:
                self.resume_banner.show_message(f"The run <b>{r.name}</b> was interrupted before its first "
                                                "checkpoint, so it cannot resume. Start it again in its folder, "
                                                "with the same configuration?", "Start again")

    def _resume_interrupted(self) -> None:
        run = Run(self._interrupted)
        if run.has_checkpoint():
            self.resume_from(str(run.files.last))
            return
        try:
            cfg = run.config()
        except ConfigError as err:
            self.show_error(f"cannot start {run.id} again: {err}")
            return
        run.reset()
        self.set_config(cfg)
        self.charts.reset()
        self.samples.clear_samples()
        self._launch(workers.TrainingWorker(cfg, str(run.path)))


def _about_text() -> str:
    from autogpt_gui import __version__

    return (f"autogpt-gui {__version__}\n\nTrain a GPT-style language model on your own computer, watch it "
            f"learn, and keep what it learned.\n\nRuns are kept in {paths.runs_dir()}")
