"""The window's chat wiring: the Data tab's mask preview after a chat source is read, and the playground's chat
replies (the chosen model and, side by side, the base), each in a background job. A mixin of MainWindow."""
from __future__ import annotations

import copy
from pathlib import Path

from autogpt_gui.ui import chat_jobs

AUTO_MASK_BYTES = 20 << 20  # a chat file up to this size is tokenized for the mask preview as soon as it is read


class WindowChat:
    """Chat source previews and playground chat replies, each in a background job with its answer in the window."""

    def show_chat_source(self, chat: bool) -> None:
        """The Data tab shows masks for a chat source; the playground turns to chat when the source becomes one."""
        self.data.set_chat(chat)
        if chat != getattr(self, "_chat_source", False):
            self.samples.mode.setCurrentIndex(self.samples.mode.findData("chat" if chat else "text"))
        self._chat_source = chat

    def _previewed(self, info: dict) -> None:
        """The Data tab shows the source; a (small) chat source goes on to show its mask at once."""
        self.data.show_preview(info)
        cfg = self.config_panel.config()
        if cfg.data.source == "chat" and info["size"] <= AUTO_MASK_BYTES:
            self.tokenize_masks()

    def tokenize_masks(self) -> None:
        """Tokenize the chat source through its template in the background; the Data tab shows the mask."""
        cfg = copy.deepcopy(self.config_panel.config())
        self.background.cancel("tokenize")  # the settings changed: what it would show is out of date
        self._masks_asked = asked = getattr(self, "_masks_asked", 0) + 1
        self.data.set_busy(True)

        def done(info):
            if asked == self._masks_asked:
                self.data.show_tokens(info)
                self.config_panel.set_data_info(info["vocab_size"], info["train_tokens"])

        def failed(msg, field):
            if asked != self._masks_asked:
                return
            self.data.set_busy(False)
            self.data.show_progress("cancelled" if msg == "cancelled" else "failed", 0.0)
            if msg != "cancelled":
                self.data.show_error(msg)
            if field in self.config_panel.editors:  # a refused template, say, is shown at its setting too
                self.config_panel.show_problems([(field, msg)])

        def progressed(phase, fraction):
            if asked == self._masks_asked:
                self.data.show_progress(phase, fraction)

        self.background.start("tokenize", chat_jobs.chat_masks_job(cfg), done, failed, progressed)

    def chat(self, req: dict) -> None:
        """Answer the playground's chat message with the chosen model, and with the base when comparing."""
        box = self.samples.chat
        settings = (req["max_new_tokens"], req["temperature"], req["seed"])
        base = self.config_panel.config().model.init
        if req["compare"]:
            if base:
                self._reply("base", base, req["base_turns"], settings)
            else:
                box.reply_failed("base", "There is no base model: choose one in 'Start from' (Model group).")
        if req["source"] == "live" and self.worker is not None and hasattr(self.worker, "chat"):
            self._live_epoch = box.epoch
            if self.worker.chat(req["turns"], *settings):
                self.samples.set_busy(False, "Chatting with the live model, between two steps")
                return  # the answer comes through live_answered; else (still preparing) the run's last checkpoint
        path, why = self._chat_model(req)
        if path is None:
            box.reply_failed("model", why)
            self.samples.set_busy(False, why)
            return
        self.samples.set_busy(False, f"Chatting with {Path(path).name}")
        self._reply("model", path, req["turns"], settings)

    def live_answered(self, text: str, why: str) -> None:
        """The live model's reply (chat_answered of the training worker)."""
        if getattr(self, "_live_epoch", None) != self.samples.chat.epoch:
            return
        if why:
            self.samples.chat.reply_failed("model", why)
        else:
            self.samples.chat.add_reply("model", text)

    def _reply(self, which: str, path: str, turns: list, settings: tuple) -> None:
        box, epoch = self.samples.chat, self.samples.chat.epoch

        def now(fn):  # an answer counts only in the conversation that asked for it
            return lambda *args: fn(*args) if box.epoch == epoch else None

        self.background.start(f"chat-{which}", chat_jobs.chat_job(path, turns, *settings),
                              now(lambda text: box.add_reply(which, text)),
                              now(lambda msg, field: box.reply_failed(which, msg)),
                              on_text=now(lambda piece: box.stream_reply(which, piece)))

    def _chat_model(self, req: dict) -> tuple[str | None, str]:
        """The checkpoint, run folder or model folder to chat with, or None and why there is none."""
        source = req["source"]
        if source in ("file", "checkpoint") and req.get("checkpoint"):
            return req["checkpoint"], ""
        if source == "base":
            init = self.config_panel.config().model.init
            return (init, "") if init else (None, "Choose a pretrained model in 'Start from' (Model group) first.")
        if self.run_path and Path(self.run_path).exists():  # live: the run's latest saved checkpoint
            return self.run_path, ""
        return None, "Start a run first, or choose a checkpoint file as the model."
