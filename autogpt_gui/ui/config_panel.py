"""The configuration form: model, data, optimizer and training settings, with live estimates.

Built from a table of fields, so every setting has a label, a tooltip and a place to show the
engine's own validation message.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from autogpt_gui import length
from autogpt_gui.config import (
    OPTIMIZERS,
    PRECISIONS,
    PRESETS,
    SCHEDULES,
    TOKENIZERS,
    RunConfig,
    apply_preset,
    set_field,
)
from autogpt_gui.errors import ConfigError
from autogpt_gui.estimates import estimate, human_bytes, human_count, memory_problems, system_memory
from autogpt_gui.pretrained import read_config, shape_of

SOURCE_LABELS = [("python-docs", "Built-in: Python documentation"), ("shakespeare", "Built-in: Tiny Shakespeare"),
                 ("task:addition", "Task: addition (a+b=c)"),
                 ("task:reversal", "Task: reverse a word"), ("file", "Text file…"), ("folder", "Folder of text files…"),
                 ("jsonl", "JSONL file (text field)…")]

# (key, label, kind, options, tooltip); kind: int, float, sci, bool, choice, text, path
SECTIONS = {
    "Model": [
        ("model.init", "Start from", "path", None, "Empty: a new model, from scratch. Or a pretrained GPT-2 to "
         "fine-tune: a Hugging Face folder (config.json + model.safetensors) or a hub id such as gpt2, "
         "distilgpt2, gpt2-medium (downloaded once, where there is internet). Its shape and tokenizer come with it."),
        ("model.preset", "Size preset", "choice", [*PRESETS, "custom"],
         "A ready-made model size; choosing one fills in layers, heads, width and context."),
        ("model.n_layer", "Layers", "int", (1, 96), "Transformer blocks stacked on each other: more learns more, slower."),
        ("model.n_head", "Heads", "int", (1, 64), "Attention heads per layer; must divide the width."),
        ("model.n_embd", "Width", "int", (8, 8192), "Size of each token's vector (n_embd)."),
        ("model.block_size", "Context", "int", (2, 8192), "How many tokens the model sees at once."),
        ("model.dropout", "Dropout", "float", (0.0, 0.9, 0.05), "Randomly zeroes activations while training; "
                                                                 "helps small datasets generalise (0 for speed)."),
        ("model.bias", "Bias terms", "bool", None, "Bias in linear layers and LayerNorms, as GPT-2 had. Off by default "
                                                      "(nanoGPT's choice): as good, and faster."),
        ("model.finetune", "Fine-tuning", "choice", [("full", "Full: every weight trains"),
                                                     ("lora", "LoRA: small adapters, base frozen")],
         "For a pretrained model. LoRA trains low-rank adapters beside frozen weights: far less memory and tiny "
         "checkpoints; export folds them into the model."),
        ("model.lora_rank", "LoRA rank", "int", (1, 1024), "Rank of each adapter (8 or 16 is usual): more adapts more."),
        ("model.lora_alpha", "LoRA alpha", "float", (0.01, 4096.0, 1.0), "Adapters are scaled by alpha / rank "
                                                                          "(twice the rank is usual)."),
        ("model.lora_dropout", "LoRA dropout", "float", (0.0, 0.9, 0.05), "Dropout on the adapters' input."),
        ("model.lora_targets", "LoRA layers", "text", None, "Which layers of each block get adapters, separated by "
                                                            "commas: c_attn, c_proj, c_fc (or attn.c_proj, mlp.c_proj)."),
    ],
    "Data": [
        ("data.source", "Source", "choice", SOURCE_LABELS, "Where the training text comes from."),
        ("data.path", "Path", "path", None, "The file or folder to train on (text, UTF-8)."),
        ("data.tokenizer", "Tokenizer", "choice", list(TOKENIZERS), "char: one token per character; byte: 256 "
                                                                    "UTF-8 bytes; bpe: sub-words learned from your text."),
        ("data.bpe_vocab_size", "BPE vocabulary", "int", (260, 65536), "Number of BPE tokens to learn (bpe only)."),
        ("data.val_fraction", "Validation share", "float", (0.01, 0.5, 0.01),
         "Share of the text held out to measure generalisation."),
        ("data.task_digits", "Task digits", "int", (1, 6), "Digits per operand for the addition task."),
        ("data.text_field", "JSONL field", "text", None, "Which field of each JSON line holds the text (jsonl only)."),
    ],
    "Optimizer": [
        ("optim.name", "Optimizer", "choice", list(OPTIMIZERS), "AdamW is the usual choice for transformers."),
        ("optim.lr", "Learning rate", "sci", None, "Peak step size; 1e-3 suits small models, 6e-4 larger ones."),
        ("optim.min_lr", "Min learning rate", "sci", None, "Where the schedule decays to (often lr / 10)."),
        ("optim.schedule", "Schedule", "choice", list(SCHEDULES), "How the learning rate changes over the run "
                                                                  "(wsd: warmup, stable, decay)."),
        ("optim.warmup_steps", "Warmup steps", "int", (0, 10**7), "Steps of linear warmup from zero."),
        ("optim.decay_fraction", "WSD decay share", "float", (0.01, 1.0, 0.05),
         "For the wsd schedule: the last share of the run over which the rate decays to min lr."),
        ("optim.beta1", "Beta 1", "float", (0.0, 0.999, 0.01), "Momentum of the gradient average."),
        ("optim.beta2", "Beta 2", "float", (0.0, 0.9999, 0.001), "Momentum of the squared-gradient average."),
        ("optim.weight_decay", "Weight decay", "float", (0.0, 10.0, 0.01), "Pulls weights toward zero (matrices only)."),
        ("optim.grad_clip", "Gradient clip", "float", (0.0, 100.0, 0.1), "Caps the gradient norm; 0 turns it off."),
    ],
    "Training": [
        ("train.batch_size", "Batch size", "int", (1, 4096), "Sequences per micro-batch."),
        ("train.grad_accum", "Accumulation", "int", (1, 1024), "Micro-batches added up per optimizer step."),
        ("train.max_steps", "Max steps", "int", (0, 10**8), "Optimizer steps to train (used when epochs is 0)."),
        ("train.epochs", "Epochs", "int", (0, 10**5), "Passes over the data; 0 trains for max steps instead."),
        ("train.eval_interval", "Evaluate every", "int", (1, 10**7), "Steps between validation measurements."),
        ("train.eval_batches", "Eval batches", "int", (1, 10**5), "Batches averaged per validation measurement."),
        ("train.checkpoint_interval", "Checkpoint every", "int", (0, 10**7),
         "Steps between periodic checkpoints; 0 keeps only best and last."),
        ("train.keep_last", "Keep last", "int", (1, 1000), "Periodic checkpoints kept; best and last are never deleted."),
        ("train.precision", "Precision", "choice", list(PRECISIONS), "auto times fp32 against bf16 on your hardware "
                                                                    "and keeps the faster one."),
        ("train.compile", "torch.compile", "bool", None, "Compile the model first (helps on GPUs, slow to start)."),
        ("train.device", "Device", "choice", [("auto", "Automatic (best available)"), ("cpu", "CPU")],
         "Where to train: a GPU when there is one."),
        ("train.seed", "Seed", "int", (0, 2**31 - 1), "Same seed, same run: the results repeat exactly."),
        ("train.sample_prompt", "Sample prompt", "text", None, "Text the samples at each evaluation start from."),
        ("train.sample_tokens", "Sample length", "int", (0, 100000), "Tokens in each sample at an evaluation (0: none)."),
        ("train.early_stop_patience", "Early stop after", "int", (0, 10**6), "End the run when this many evaluations "
         "in a row bring no improvement of the validation loss (0: never). The best checkpoint is kept."),
        ("train.early_stop_min_delta", "Early stop margin", "float", (0.0, 10.0, 0.001),
         "How much lower a validation loss must be to count as an improvement."),
        ("train.on_divergence", "On divergence", "choice", [("rollback", "Roll back the step, halve the rate"),
                                                            ("stop", "Stop the run")],
         "A loss that becomes NaN or spikes: skip that step's update and its batch, halve the learning rate and go "
         "on (three times within 100 steps stops the run), or stop at once. The last checkpoint is kept."),
        ("train.on_oom", "Out of memory", "choice", [("halve", "Halve the micro-batch, go on"),
                                                     ("ask", "Ask me first"), ("stop", "Stop the run")],
         "When a step does not fit in memory: halve the micro-batch and double the accumulation (the same effective "
         "batch) and redo the step, ask you first (the run waits for the answer; from the command line it "
         "halves), or stop. The last checkpoint is kept either way."),
        ("train.spike_factor", "Spike threshold", "float", (0.0, 1000.0, 0.5), "A loss above this many times its "
         "running median counts as a spike (0: only NaN or infinite losses)."),
    ],
}


class ConfigPanel(QScrollArea):
    """Edits a RunConfig. Emits changed(RunConfig) after every edit."""

    changed = Signal(object)
    find_lr_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # never narrower than its rows: see below
        body = QWidget()
        layout = QVBoxLayout(body)
        self.editors: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        self.rows: dict[str, tuple[QFormLayout, QWidget]] = {}
        self._loading = False
        self._vocab: int | None = None
        self._device_memory: dict[str, tuple[int | None, str]] = {}
        self._corpus_tokens: int | None = None
        self.summary = QLabel()
        self.summary.setObjectName("estimates")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.summary)
        for title, specs in SECTIONS.items():
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
            for key, label, kind, options, tip in specs:
                editor = self._make_editor(key, kind, options)
                editor.setToolTip(tip)
                error = QLabel()
                error.setObjectName("fieldError")
                error.setWordWrap(True)
                error.hide()
                cell = QWidget()
                v = QVBoxLayout(cell)
                v.setContentsMargins(0, 0, 0, 0)
                v.setSpacing(1)
                if key == "optim.lr":  # the learning-rate finder sits beside the field it fills
                    row = QHBoxLayout()
                    row.addWidget(editor, 1)
                    self.find_lr = QPushButton("Find…")
                    self.find_lr.setToolTip("Sweep the learning rate on a copy of this model for ~100 steps and "
                                            "suggest one (plotted: loss against learning rate).")
                    self.find_lr.clicked.connect(self.find_lr_requested)
                    row.addWidget(self.find_lr)
                    v.addLayout(row)
                else:
                    v.addWidget(editor)
                v.addWidget(error)
                name = QLabel(label)
                name.setToolTip(tip)
                form.addRow(name, cell)
                self.editors[key], self.errors[key] = editor, error
                self.rows[key] = (form, cell)
            layout.addWidget(box)
        layout.addStretch(1)
        self.setWidget(body)
        self.set_config(RunConfig())

    # ---- editors --------------------------------------------------------------------------
    def minimumSizeHint(self) -> QSize:  # the widest row fits beside the scroll bar, so nothing is cut off
        extra = self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        return QSize(self.widget().minimumSizeHint().width() + extra, 200)

    def _make_editor(self, key: str, kind: str, options) -> QWidget:
        if kind == "int":
            w = QSpinBox()
            w.setRange(*options)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda _=None, k=key: self._edited(k))
        elif kind == "float":
            w = QDoubleSpinBox()
            w.setRange(options[0], options[1])
            w.setSingleStep(options[2])
            w.setDecimals(4)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda _=None, k=key: self._edited(k))
        elif kind == "bool":
            w = QCheckBox()
            w.toggled.connect(lambda _=None, k=key: self._edited(k))
        elif kind == "choice":
            w = QComboBox()
            for opt in options:
                value, text = opt if isinstance(opt, tuple) else (opt, opt)
                w.addItem(text, value)
            w.currentIndexChanged.connect(lambda _=None, k=key: self._edited(k))
        elif kind == "path":
            w = QWidget()
            h = QHBoxLayout(w)
            h.setContentsMargins(0, 0, 0, 0)
            w.line = QLineEdit()
            w.line.setPlaceholderText("choose a file or folder")
            w.line.editingFinished.connect(lambda k=key: self._edited(k))
            browse = QPushButton("Browse…")
            browse.setObjectName("browse")
            browse.clicked.connect(lambda _=False, k=key: self._browse(k))
            if key == "model.init":
                w.line.setPlaceholderText("from scratch")
            h.addWidget(w.line, 1)
            h.addWidget(browse)
        else:  # sci and text: free text, parsed on read
            w = QLineEdit()
            w.editingFinished.connect(lambda k=key: self._edited(k))
        w.setObjectName(key)
        return w

    def _browse(self, key: str = "data.path") -> None:
        if key == "model.init":
            path = QFileDialog.getExistingDirectory(self, "Choose a Hugging Face GPT-2 folder (with config.json)")
            if path:
                self.editors[key].line.setText(path)
                self._edited(key)
            return
        source = self.editors["data.source"].currentData()
        if source == "folder":
            path = QFileDialog.getExistingDirectory(self, "Choose a folder of text files")
        else:
            flt = "JSON lines (*.jsonl *.json);;All files (*)" if source == "jsonl" else "Text (*.txt *.md *.py);;All files (*)"
            path, _ = QFileDialog.getOpenFileName(self, "Choose the training text", "", flt)
        if path:
            self.editors["data.path"].line.setText(path)
            self._edited("data.path")

    def _read(self, key: str):
        w = self.editors[key]
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            return w.value()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return w.currentData()
        if hasattr(w, "line"):
            return w.line.text().strip()
        text = w.text().strip()
        if key == "train.sample_prompt":
            return text.replace("\\n", "\n")
        try:
            return float(text)
        except ValueError:
            return text  # set_field reports it as "not a valid float"

    def _write(self, key: str, value) -> None:
        w = self.editors[key]
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.setValue(value)
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QComboBox):
            i = w.findData(value)
            if i < 0:
                w.addItem(str(value), value)
                i = w.count() - 1
            w.setCurrentIndex(i)
        elif hasattr(w, "line"):
            w.line.setText(str(value))
        else:
            w.setText(str(value).replace("\n", "\\n") if key == "train.sample_prompt" else f"{value:g}"
                      if isinstance(value, float) else str(value))

    # ---- API ---------------------------------------------------------------------------------
    def set_config(self, cfg: RunConfig) -> None:
        self._loading = True
        self._cfg = cfg
        for key in self.editors:
            section, name = key.split(".")
            self._write(key, getattr(getattr(cfg, section), name))
        self._loading = False
        self._refresh()

    def config(self) -> RunConfig:
        """The form's configuration; values the form cannot parse are reported by problems()."""
        return self._cfg

    def set_devices(self, devices: list[tuple[str, str, int | None]]) -> None:
        """The devices torch found: (value, description, memory in bytes); memory bounds what Start allows."""
        combo = self.editors["train.device"]
        current = combo.currentData()
        self._loading = True
        combo.clear()
        self._device_memory = {value: (memory, text) for value, text, memory in devices}
        for value, text, _memory in devices:
            combo.addItem(text, value)
        self._loading = False
        self._write("train.device", current)

    def set_data_info(self, vocab_size: int | None, corpus_tokens: int | None) -> None:
        self._vocab, self._corpus_tokens = vocab_size, corpus_tokens
        self._refresh()

    def show_problems(self, problems: list[tuple[str, str]]) -> None:
        """Mark each field at fault with the engine's message; clear the others."""
        by_field: dict[str, list[str]] = {}
        for f, m in problems:
            by_field.setdefault(f, []).append(m)
        for key, label in self.errors.items():
            msgs = by_field.get(key)
            label.setText("\n".join(msgs or []))
            label.setVisible(bool(msgs))
            self.editors[key].setProperty("invalid", bool(msgs))
            self.editors[key].style().unpolish(self.editors[key])
            self.editors[key].style().polish(self.editors[key])

    # ---- internals ---------------------------------------------------------------------------
    def _edited(self, key: str) -> None:
        if self._loading:
            return
        section, name = key.split(".")
        self._parse_problems = []
        cfg = self._cfg
        try:
            value = self._read(key)
            if key == "model.preset" and value != "custom":
                cfg.model = apply_preset(cfg.model, value, [])
                self.set_config(cfg)
            else:
                setattr(cfg, section, set_field(getattr(cfg, section), section, name, value))
                if key == "model.init":
                    self._take_pretrained(cfg)
                if section == "model" and name in ("n_layer", "n_head", "n_embd", "block_size"):
                    self._loading = True
                    cfg.model.preset = "custom"
                    self._write("model.preset", "custom")
                    self._loading = False
        except Exception as err:  # ConfigError: the text could not be parsed
            self._parse_problems = getattr(err, "problems", [(key, str(err))])
        if section == "data":
            self._vocab = self._corpus_tokens = None
        self._refresh()
        self.changed.emit(cfg)

    def problems(self) -> list[tuple[str, str]]:
        """The form's problems: what validate() finds, then whether training fits the chosen device's memory."""
        found = list(getattr(self, "_parse_problems", [])) + self._cfg.validate()
        if not found:
            memory, where = self._device_memory.get(self._cfg.train.device, (None, ""))
            if memory is None:  # devices not probed yet: this computer's memory bounds a CPU run
                memory, where = system_memory(), "this computer"
            found += memory_problems(self._cfg, memory, where if self._cfg.train.device != "auto" else
                                     "the chosen device", self._vocab)
        return found

    def set_lr(self, lr: float) -> None:
        """Take a learning rate (the finder's suggestion), with a tenth of it as the schedule's floor."""
        cfg = self._cfg
        cfg.optim = replace(cfg.optim, lr=float(f"{lr:.2g}"), min_lr=float(f"{lr / 10:.2g}"))
        self.set_config(cfg)
        self.changed.emit(cfg)

    def _take_pretrained(self, cfg) -> None:
        """A pretrained model fixes the shape and the tokenizer: show its values in the form, locked."""
        shape: dict = {}
        folder = Path(cfg.model.init).expanduser()
        if cfg.model.init and folder.is_dir():
            try:
                shape = shape_of(read_config(folder), folder.name)
            except ConfigError:
                shape = {}  # validate() marks the field with what is wrong
        if cfg.model.init:
            cfg.model = replace(cfg.model, preset="custom", **shape)
            cfg.data = replace(cfg.data, tokenizer="model")
            cfg.model.block_size = min(cfg.model.block_size, shape.get("n_positions", cfg.model.block_size))
        else:
            cfg.model = replace(cfg.model, n_positions=0, vocab_size=0, activation="gelu", ln_eps=1e-5, finetune="full")
            if cfg.data.tokenizer == "model":
                cfg.data = replace(cfg.data, tokenizer="char")
        self.set_config(cfg)

    def _refresh(self) -> None:
        cfg = self._cfg
        pretrained = bool(cfg.model.init)
        for key in ("model.preset", "model.n_layer", "model.n_head", "model.n_embd", "model.bias",
                    "data.tokenizer"):
            self.editors[key].setEnabled(not pretrained)
        source = cfg.data.source
        for key in ("data.path",):
            self.editors[key].setEnabled(source in ("file", "folder", "jsonl"))
        self.editors["data.bpe_vocab_size"].setEnabled(cfg.data.tokenizer == "bpe")
        self.editors["data.task_digits"].setEnabled(source == "task:addition")
        self.editors["data.text_field"].setEnabled(source == "jsonl")
        self.editors["optim.decay_fraction"].setEnabled(cfg.optim.schedule == "wsd")
        self.editors["train.max_steps"].setEnabled(cfg.train.epochs == 0)
        self.editors["model.finetune"].setEnabled(pretrained)
        form, cell = self.rows["model.finetune"]
        form.setRowVisible(cell, pretrained)  # fine-tuning settings appear once there is a model to fine-tune
        for key in ("model.lora_rank", "model.lora_alpha", "model.lora_dropout", "model.lora_targets"):
            self.editors[key].setEnabled(pretrained and cfg.model.finetune == "lora")
            form, cell = self.rows[key]
            form.setRowVisible(cell, pretrained and cfg.model.finetune == "lora")
        est = estimate(cfg, self._vocab)
        lines = [f"<b>{human_count(est.params)}</b> parameters · about <b>{human_bytes(est.memory_bytes)}</b> "
                 f"to train · <b>{est.tokens_per_step:,}</b> tokens per step"]
        if pretrained:  # what each way of fine-tuning costs, the chosen one in bold
            modes = []
            for mode, name in (("full", "Full"), ("lora", "LoRA")):
                e = estimate(replace(cfg, model=replace(cfg.model, finetune=mode)), self._vocab)
                text = f"{name}: {human_count(e.trainable)} trainable, {human_bytes(e.memory_bytes)}"
                modes.append(f"<b>{text}</b>" if mode == cfg.model.finetune else text)
            lines.append("Fine-tuning: " + " · ".join(modes))
        if self._corpus_tokens:
            try:
                run_length = length.plan(cfg.train.max_steps, cfg.train.epochs)
            except ConfigError:  # marked at its field already
                run_length = None
            steps = run_length.max_steps if run_length else None  # an epoch-counted run says its epochs itself
            covered = (f" · the run covers <b>{length.epochs_covered(steps, est.tokens_per_step, self._corpus_tokens):.1f}"
                       "</b> epochs") if steps else ""
            lines.append(f"Corpus: <b>{self._corpus_tokens:,}</b> training tokens, vocabulary "
                         f"{self._vocab}{covered}")
        else:
            lines.append("<i>Corpus size and epochs appear once the data is tokenized (Data tab).</i>")
        self.summary.setText("<br>".join(lines))
