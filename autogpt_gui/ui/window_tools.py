"""The window's tools that run as background jobs: the playground (generate, side by side with the base),
export, and the learning-rate finder; what a click on a checkpoint marker offers; and the offer to halve the
micro-batch when a step runs out of memory. A mixin of MainWindow."""
from __future__ import annotations

import copy
from pathlib import Path

import shiboken6
from PySide6.QtWidgets import QFileDialog, QMessageBox

from autogpt_gui.ui import worker as workers
from autogpt_gui.ui.lr_finder import LRFinderDialog


class WindowTools:
    """Generate, export and find a learning rate, each in a background job with its answer in the window."""

    def export_checkpoint(self, checkpoint: str, fmt: str = "hf") -> None:
        out = QFileDialog.getExistingDirectory(self, "Export the model into folder")
        if out:
            quant = self.checkpoints.quant() if fmt == "gguf" else "f32"
            what = {"hf": "a Hugging Face model folder", "gguf": f"a {quant} GGUF file (with an Ollama Modelfile)"
                    }.get(fmt, "weights, config and tokenizer")
            self.background.start("export", workers.export_job(checkpoint, out, fmt, quant),
                                  lambda p: self.controls.show_message(f"Exported {what} to {p}"))

    def generate(self, req: dict) -> None:
        self.samples.set_busy(True, "generating…")
        settings = (req["prompt"], req["max_new_tokens"], req["temperature"], req["top_k"], req["top_p"], req["seed"])
        base = self.config_panel.config().model.init
        if req.get("compare") and base:  # the same prompt and seed through the model it started from
            self.background.start("generate-base", workers.generation_job(base, *settings), lambda text: None,
                                  lambda msg, field: self.samples.append_base_text(f"\n[{msg}]"),
                                  on_text=self.samples.append_base_text)
        if req["source"] == "live" and self.worker is not None and self.worker.generate(*settings):
            return  # else (still preparing, or a run of another process): its run folder's last checkpoint
        checkpoint = req.get("checkpoint") if req["source"] in ("file", "checkpoint") else None
        if req["source"] == "base":
            checkpoint = self.config_panel.config().model.init or None
            if checkpoint is None:
                self.samples.set_busy(False, "Choose a pretrained model in 'Start from' (Model group) first.")
                return
        if checkpoint is None and self.run_path:
            checkpoint = self.run_path
        if checkpoint is None:
            self.samples.set_busy(False, "Start a run first, or choose a checkpoint file as the model.")
            return
        self.background.start("generate", workers.generation_job(checkpoint, *settings),
                              lambda text: self.samples.set_busy(False, "done"),
                              lambda msg, field: self.samples.set_busy(False, msg), on_text=self.samples.append_text)

    def find_lr(self) -> None:
        """Sweep the learning rate on a copy of the configured model; the dialog offers the suggestion."""
        problems = self.config_panel.problems()
        if problems:
            self.show_error(f"fix the configuration first ({problems[0][0]}: {problems[0][1]})", problems[0][0])
            return
        dialog = LRFinderDialog(self)
        dialog.use.connect(self.config_panel.set_lr)
        dialog.finished.connect(lambda _: self.background.cancel("find-lr"))
        self.lr_dialog = dialog
        self.background.start("find-lr", workers.find_lr_job(copy.deepcopy(self.config_panel.config())),
                              dialog.show_result, lambda msg, field: dialog.failed(msg), dialog.show_progress)
        dialog.show()

    def sample_checkpoint(self, checkpoint: str) -> None:
        """Open the playground on a checkpoint (from a click on its marker)."""
        if not Path(checkpoint).exists():
            self.show_error(f"{Path(checkpoint).name} is no longer on disk (only the last few periodic checkpoints "
                            "are kept; best.pt and last.pt always are)")
            return
        self.samples.use_checkpoint(checkpoint)
        self.tabs.setCurrentWidget(self.samples)

    def offer_halving(self, offer: dict) -> None:
        """on_oom = "ask": the run waits at a step that did not fit in memory; the user halves or ends it."""
        worker = self.worker
        (b, half), (a, twice) = offer["batch_size"], offer["grad_accum"]
        box = QMessageBox(QMessageBox.Warning, "Out of memory",
                          f"Step {offer['step']} does not fit in memory with a micro-batch of {b}.\n\n"
                          f"Halve it to {half} and accumulate {twice} micro-batches instead of {a}? The effective "
                          "batch stays the same, and the step starts again on the same data.\n\n"
                          "No ends the run; its last checkpoint is kept.", QMessageBox.Yes | QMessageBox.No, self)
        box.setDefaultButton(QMessageBox.Yes)
        box.finished.connect(lambda code: shiboken6.isValid(worker) and worker.answer_oom(
            box.clickedButton() is box.button(QMessageBox.Yes)))
        worker.finished.connect(box.reject)  # Stop, or closing the window, ended the run: the question is moot
        self.oom_box = box
        self._logged(f"out of memory at step {offer['step']} with a micro-batch of {b}: asking whether to halve it")
        box.open()  # window-modal; the training thread waits for the answer, the window stays responsive
