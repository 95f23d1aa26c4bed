"""Every setting of a run described once: label, tooltip, bounds, choices, whether it changes live.

The form, the Steer tab, `--set`, validate() and live edits all derive from SETTINGS. Imports neither
torch nor Qt, so anything may read it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# name -> (n_layer, n_head, n_embd, block_size); approximate non-embedding parameters in the comment
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "nano": (3, 4, 64, 64),  # 0.15M: a teaching demo that learns in a minute
    "micro": (4, 4, 128, 64),  # 0.8M: nanoGPT's CPU Shakespeare config
    "mini": (6, 6, 384, 256),  # 10.7M: nanoGPT's Shakespeare character model
    "small": (8, 8, 512, 512),  # 25M
    "gpt2": (12, 12, 768, 1024),  # 85M + embeddings: GPT-2 small
    "llama-nano": (3, 4, 64, 64),  # 0.15M: nano's size, the llama kind (2 KV heads, as below)
    "llama-micro": (4, 4, 128, 64),  # 0.8M: micro's size, the llama kind
    "llama-mini": (6, 6, 384, 256),  # 10.8M: mini's size, the llama kind
    "smollm2-135m": (30, 9, 576, 2048),  # 106M + 28M embeddings: SmolLM2-135M's shape (its vocabulary: 49152)
}
# what a llama-kind preset sets beyond its shape; a preset missing here is of the gpt2 kind
LLAMA_PRESETS: dict[str, dict[str, int | float | bool]] = {
    "llama-nano": {"n_kv_head": 2, "intermediate_size": 192},
    "llama-micro": {"n_kv_head": 2, "intermediate_size": 384},
    "llama-mini": {"n_kv_head": 2, "intermediate_size": 1216},
    "smollm2-135m": {"n_kv_head": 3, "intermediate_size": 1536, "tie_word_embeddings": True, "rope_theta": 100000.0},
}

# the form's group of each section, in the order the form shows them
GROUPS = {"model": "Model", "data": "Data", "optim": "Optimizer", "train": "Training"}

KINDS = ("int", "float", "sci", "bool", "choice", "text", "path")  # sci: a float typed as text (1e-3)


@dataclass(frozen=True)
class Setting:
    """One setting: how the form shows it, which values it accepts, and when a change takes effect."""

    key: str  # section.name, as in TOML and --set
    label: str
    tip: str
    kind: str  # one of KINDS
    low: float | None = None  # the smallest value validate() accepts (None: no bound)
    high: float | None = None  # the largest
    open_low: bool = False  # low itself is refused
    open_high: bool = False  # high itself is refused
    off: float | None = None  # a value accepted outside the bounds (0: the feature is off)
    offer: tuple[float, float] | None = None  # the spin box's range where it differs from low..high
    step: float = 1.0
    choices: tuple[tuple[str, str], ...] = ()  # (value, text shown)
    refusal: str = ""  # validate()'s message for a value outside the bounds ({low}, {high}, {value})
    refusal_high: str = ""  # the message above high, where it differs
    live: bool = False  # can change while the run trains (engine/train/edits.py)
    applies: str = "at start"  # when a change takes effect
    live_note: str = ""  # what a live change does, for the Steer tab
    shown: bool = True  # the form has a field for it (else derived, or for scripts)
    arch: str = ""  # the block kind (model.arch) it applies to; "": both

    @property
    def section(self) -> str:
        return self.key.split(".")[0]

    @property
    def name(self) -> str:
        return self.key.split(".")[1]

    def values(self) -> tuple[str, ...]:
        """The accepted choices, in the order the form offers them."""
        return tuple(value for value, _text in self.choices)

    def accepts(self, value: float) -> bool:
        """Whether value is within the bounds (or the off value); NaN and infinities never are."""
        if self.off is not None and value == self.off:
            return True
        if not math.isfinite(value):
            return False
        below = self.low is not None and (value <= self.low if self.open_low else value < self.low)
        above = self.high is not None and (value >= self.high if self.open_high else value > self.high)
        return not (below or above)

    def refused(self, value: float) -> str:
        """validate()'s message for value, which accepts() refuses."""
        above = self.high is not None and math.isfinite(value) and value > self.high
        text = self.refusal_high if above and self.refusal_high else self.refusal
        return text.format(low=self.low, high=self.high, value=value)

    def spin_range(self) -> tuple[float, float]:
        """The range the form's spin box offers."""
        if self.offer is not None:
            return self.offer
        if self.low is None or self.high is None:
            raise ValueError(f"{self.key}: a spin box needs an offer or both bounds")
        return self.low, self.high


def _same(*values: str) -> tuple[tuple[str, str], ...]:
    return tuple((v, v) for v in values)


_TABLE = (
    # ---- model ---------------------------------------------------------------------------------
    Setting("model.init", "Start from", "Empty: a new model, from scratch. Or a pretrained GPT-2 to fine-tune: a "
            "Hugging Face folder (config.json + model.safetensors) or a hub id such as gpt2, distilgpt2, "
            "gpt2-medium (downloaded once, where there is internet). Its shape and tokenizer come with it.", "path"),
    Setting("model.preset", "Size preset", "A ready-made model size; choosing one fills in layers, heads, width "
            "and context (the llama-kind and SmolLM2 ones set the block kind too).", "choice",
            choices=_same(*PRESETS, "custom")),
    Setting("model.n_layer", "Layers", "Transformer blocks stacked on each other: more learns more, slower.", "int",
            low=1, offer=(1, 96), refusal="must be at least {low}"),
    Setting("model.n_head", "Heads", "Attention heads per layer; must divide the width.", "int", low=1,
            offer=(1, 64), refusal="must be at least {low}"),
    Setting("model.n_embd", "Width", "Size of each token's vector (n_embd).", "int", low=8, offer=(8, 8192),
            refusal="must be at least {low}"),
    Setting("model.block_size", "Context", "How many tokens the model sees at once.", "int", low=2,
            offer=(2, 8192), refusal="must be at least {low}"),
    Setting("model.dropout", "Dropout", "Randomly zeroes activations while training; helps small datasets "
            "generalise (0 for speed).", "float", low=0, high=1, open_high=True, offer=(0, 0.9), step=0.05,
            refusal="must be at least {low:g} and below {high:g} (0.0-0.2 is usual)"),
    Setting("model.bias", "Bias terms", "Bias in linear layers and LayerNorms, as GPT-2 had. Off by default "
            "(nanoGPT's choice): as good, and faster.", "bool", arch="gpt2"),
    Setting("model.finetune", "Fine-tuning", "For a pretrained model. LoRA trains low-rank adapters beside frozen "
            "weights: far less memory and tiny checkpoints; export folds them into the model.", "choice",
            choices=(("full", "Full: every weight trains"), ("lora", "LoRA: small adapters, base frozen"))),
    Setting("model.lora_rank", "LoRA rank", "Rank of each adapter (8 or 16 is usual): more adapts more.", "int",
            low=1, offer=(1, 1024)),
    Setting("model.lora_alpha", "LoRA alpha", "Adapters are scaled by alpha / rank (twice the rank is usual).",
            "float", low=0, open_low=True, offer=(0.01, 4096), step=1.0,
            refusal="must be a positive number (twice the rank is usual)"),
    Setting("model.lora_dropout", "LoRA dropout", "Dropout on the adapters' input.", "float", low=0, high=1,
            open_high=True, offer=(0, 0.9), step=0.05,
            refusal="must be at least {low:g} and below {high:g} (0.0-0.1 is usual)"),
    Setting("model.lora_targets", "LoRA layers", "Which layers of each block get adapters, separated by commas: "
            "c_attn, c_proj, c_fc (or attn.c_proj, mlp.c_proj).", "text"),
    Setting("model.vocab_size", "Vocabulary", "Tokens the model knows; 0 takes it from the tokenizer.", "int",
            low=0, refusal="must be 0 (from the tokenizer) or a positive count", shown=False),
    Setting("model.activation", "Activation", "gelu_tanh (GPT-2's approximation, what llama.cpp computes) or gelu "
            "(exact).", "choice",
            choices=_same("gelu", "gelu_tanh"), shown=False, arch="gpt2"),
    Setting("model.ln_eps", "LayerNorm epsilon", "Added to the variance in each LayerNorm.", "float", low=0,
            high=1, open_low=True, open_high=True, refusal="must be a small positive number (1e-5 is usual)",
            shown=False, arch="gpt2"),
    Setting("model.n_positions", "Positions", "Learned positions; 0 means the context (a pretrained model may "
            "have more).", "int", shown=False),
    # ---- the llama block kind (RMSNorm, rotary positions, SwiGLU, grouped-query attention) -------------
    Setting("model.arch", "Block kind", "gpt2: LayerNorm, GELU, learned positions (GPT-2, 2019). llama: RMSNorm, "
            "rotary positions, SwiGLU, grouped-query attention (Llama, SmolLM, Qwen, Mistral): a lower loss for "
            "the same compute.", "choice", choices=(("gpt2", "GPT-2 (2019)"), ("llama", "Llama (modern)"))),
    Setting("model.model_type", "Hugging Face type", "The model_type it came from and exports as (gpt2, llama, "
            "mistral, qwen2, qwen3); empty: the one its flags imply.", "text", shown=False),
    Setting("model.n_kv_head", "KV heads", "Key/value heads for grouped-query attention: fewer than the heads "
            "saves the KV cache; 0 means as many as the heads.", "int", low=0, offer=(0, 64), arch="llama"),
    Setting("model.head_dim", "Head width", "Width of one attention head; 0 means width / heads (Qwen3 sets its "
            "own).", "int", low=0, offer=(0, 1024), arch="llama"),
    Setting("model.intermediate_size", "MLP width", "SwiGLU's hidden width; 0 means 8/3 of the width, rounded to "
            "a multiple of 64.", "int", low=0, offer=(0, 65536), arch="llama"),
    Setting("model.rms_norm_eps", "RMSNorm epsilon", "Added to the mean square in each RMSNorm.", "float",
            shown=False, arch="llama"),
    Setting("model.rope_theta", "Rotary base", "Base of the rotary position frequencies (10000 is usual; Llama 3 "
            "uses 500000).", "float", offer=(1, 10**8), step=1000, arch="llama"),
    Setting("model.rope_scaling", "Rotary scaling", "Empty, or llama3: Llama 3.1's stretched low frequencies for "
            "long contexts.", "text", shown=False, arch="llama"),
    Setting("model.rope_factor", "Rotary scaling factor", "llama3 scaling: how far the low frequencies are "
            "stretched.", "float", shown=False, arch="llama"),
    Setting("model.rope_low_freq_factor", "Rotary low-frequency factor", "llama3 scaling's low-frequency "
            "boundary.", "float", shown=False, arch="llama"),
    Setting("model.rope_high_freq_factor", "Rotary high-frequency factor", "llama3 scaling's high-frequency "
            "boundary.", "float", shown=False, arch="llama"),
    Setting("model.rope_original_max_position_embeddings", "Rotary original context", "llama3 scaling: the "
            "context the model was first trained with.", "int", shown=False, arch="llama"),
    Setting("model.qk_norm", "Q/K norm", "RMSNorm on every head's queries and keys (Qwen3): steadier training at "
            "high learning rates.", "bool", arch="llama"),
    Setting("model.attention_bias", "Attention biases", "Biases on the query, key, value and output layers "
            "(Llama's flag).", "bool", shown=False, arch="llama"),
    Setting("model.qkv_bias", "Q/K/V biases", "Biases on the query, key and value layers only (Qwen2).", "bool",
            shown=False, arch="llama"),
    Setting("model.tie_word_embeddings", "Tied embeddings", "The output layer reuses the token embedding: fewer "
            "parameters (GPT-2 always ties).", "bool", arch="llama"),
    Setting("model.sliding_window", "Sliding window", "Each token sees at most this many tokens back (Mistral); "
            "0 means the whole context.", "int", low=0, shown=False, arch="llama"),
    Setting("model.bos_token_id", "Begin token", "The tokenizer's begin-of-text id; -1: none.", "int", shown=False),
    Setting("model.eos_token_ids", "End tokens", "Ids that end a generated text, separated by commas.", "text",
            shown=False),
    Setting("model.pad_token_id", "Padding token", "The tokenizer's padding id; -1: none.", "int", shown=False),
    # ---- data ----------------------------------------------------------------------------------
    Setting("data.source", "Source", "Where the training text comes from.", "choice", choices=(
        ("python-docs", "Built-in: Python documentation"), ("shakespeare", "Built-in: Tiny Shakespeare"),
        ("task:addition", "Task: addition (a+b=c)"), ("task:reversal", "Task: reverse a word"),
        ("file", "Text file…"), ("folder", "Folder of text files…"), ("jsonl", "JSONL file (text field)…"),
        ("chat", "Conversations (JSONL file or folder)…"))),
    Setting("data.path", "Path", "The file or folder to train on (text, UTF-8).", "path"),
    Setting("data.tokenizer", "Tokenizer", "Automatic: a pretrained model's own, else char. char: one token per "
            "character; byte: 256 UTF-8 bytes; bpe: sub-words learned from your text; model: the pretrained "
            "model's own.", "choice",
            choices=(("auto", "Automatic"), *_same("char", "byte", "bpe", "model"))),
    Setting("data.bpe_vocab_size", "BPE vocabulary", "Number of BPE tokens to learn (bpe only).", "int", low=260,
            high=65536, refusal="must be between {low} and {high} (1000-8000 suits small models)"),
    Setting("data.val_fraction", "Validation share", "Share of the text held out to measure generalisation.",
            "float", low=0, high=0.5, open_low=True, offer=(0.01, 0.5), step=0.01,
            refusal="must be above {low:g} and at most {high:g} (0.1 is usual)"),
    Setting("data.task_digits", "Task digits", "Digits per operand for the addition task.", "int", low=1, high=6,
            refusal="must be between {low} and {high}"),
    Setting("data.text_field", "JSONL field", "Which field of each JSON line holds the text (jsonl only).", "text"),
    Setting("data.chat_template", "Chat template", "How conversations become text (chat only): model (the "
            "pretrained model's own template; ChatML where it has none), chatml, or the path of a Jinja file. "
            "Rendered in a sandbox: a template cannot reach Python, read files or run forever.", "text"),
    Setting("data.train_on", "Train on", "Which tokens of a conversation the loss counts (chat only): the "
            "assistant's replies with their end-of-turn tokens, or every token.", "choice",
            choices=(("assistant", "Replies only"), ("all", "Every token"))),
    # ---- optim ---------------------------------------------------------------------------------
    Setting("optim.name", "Optimizer", "AdamW is the usual choice for transformers; muon trains the hidden "
            "weight matrices with Muon at its own rate (AdamW keeps embeddings, head, norms and biases) and "
            "reaches a given loss sooner.", "choice", choices=_same("adamw", "adam", "sgd", "muon")),
    Setting("optim.lr", "Learning rate", "Peak step size; 1e-3 suits small models, 6e-4 larger ones.", "sci",
            low=0, high=10, open_low=True,
            refusal="learning rate must be a positive number, not {value} (1e-3 is a good start)",
            refusal_high="learning rate {value:g} is far too large: at most {high:g} (1e-3 is a good start)",
            live=True, applies="next step",
            live_note="The schedule's peak: the curve keeps its shape around the new value."),
    Setting("optim.muon_lr", "Muon learning rate", "For the muon optimizer: the peak rate of the hidden weight "
            "matrices (0.02 is Muon's usual). The schedule moves it with the learning rate, in their ratio; a "
            "live edit of the learning rate moves both.", "sci", low=0, high=10, open_low=True,
            refusal="Muon learning rate must be a positive number, not {value} (0.02 is a good start)",
            refusal_high="Muon learning rate {value:g} is far too large: at most {high:g} (0.02 is a good start)"),
    Setting("optim.min_lr", "Min learning rate", "Where the schedule decays to (often lr / 10).", "sci", low=0,
            refusal="must be zero or positive, not {value}", live=True, applies="next step"),
    Setting("optim.schedule", "Schedule", "How the learning rate changes over the run (wsd: warmup, stable, "
            "decay).", "choice", choices=_same("constant", "linear", "cosine", "wsd")),
    Setting("optim.warmup_steps", "Warmup steps", "Steps of linear warmup from zero.", "int", low=0,
            offer=(0, 10**7), refusal="must be zero or positive"),
    Setting("optim.decay_fraction", "WSD decay share", "For the wsd schedule: the last share of the run over "
            "which the rate decays to min lr.", "float", low=0, high=1, open_low=True, offer=(0.01, 1), step=0.05,
            refusal="must be above {low:g} and at most {high:g} (0.2 is usual)"),
    Setting("optim.beta1", "Beta 1", "Momentum of the gradient average.", "float", low=0, high=1, open_high=True,
            offer=(0, 0.999), step=0.01, refusal="must be at least {low:g} and below {high:g} (0.9 / 0.99 are usual)"),
    Setting("optim.beta2", "Beta 2", "Momentum of the squared-gradient average.", "float", low=0, high=1,
            open_high=True, offer=(0, 0.9999), step=0.001,
            refusal="must be at least {low:g} and below {high:g} (0.9 / 0.99 are usual)"),
    Setting("optim.grad_clip", "Gradient clip", "Caps the gradient norm; 0 turns it off.", "float", low=0,
            offer=(0, 100), step=0.1, refusal="must be zero (off) or positive (1.0 is usual)", live=True,
            applies="next step"),
    Setting("optim.weight_decay", "Weight decay", "Pulls weights toward zero (matrices only).", "float", low=0,
            offer=(0, 10), step=0.01, refusal="must be zero or positive (0.1 is usual)", live=True,
            applies="next step"),
    # ---- train ---------------------------------------------------------------------------------
    Setting("train.batch_size", "Batch size", "Sequences per micro-batch.", "int", low=1, offer=(1, 4096),
            refusal="must be at least {low}"),
    Setting("train.grad_accum", "Accumulation", "Micro-batches added up per optimizer step.", "int", low=1,
            offer=(1, 1024), refusal="must be at least {low}"),
    Setting("train.max_steps", "Max steps", "Optimizer steps to train (used when epochs is 0).", "int",
            offer=(0, 10**8)),
    Setting("train.epochs", "Epochs", "Passes over the data; 0 trains for max steps instead.", "int", low=0,
            offer=(0, 10**5), refusal="must be zero (use max steps) or positive"),
    Setting("train.eval_interval", "Evaluate every", "Steps between validation measurements.", "int", low=1,
            offer=(1, 10**7), refusal="must be at least {low}", live=True, applies="next step"),
    Setting("train.eval_batches", "Eval batches", "Batches averaged per validation measurement.", "int", low=1,
            offer=(1, 10**5), refusal="must be at least {low}"),
    Setting("train.checkpoint_interval", "Checkpoint every", "Steps between periodic checkpoints; 0 keeps only "
            "best and last.", "int", low=0, offer=(0, 10**7), refusal="must be zero (only best and last) or positive",
            live=True, applies="next step"),
    Setting("train.keep_last", "Keep last", "Periodic checkpoints kept; best and last are never deleted.", "int",
            low=1, offer=(1, 1000), refusal="must be at least {low}"),
    Setting("train.precision", "Precision", "auto times fp32 against bf16 on your hardware and keeps the faster "
            "one.", "choice", choices=_same("auto", "fp32", "bf16", "fp16")),
    Setting("train.compile", "torch.compile", "Compile the model first (helps on GPUs, slow to start).", "bool"),
    Setting("train.device", "Device", "Where to train: a GPU when there is one.", "choice",
            choices=(("auto", "Automatic (best available)"), ("cpu", "CPU"))),
    Setting("train.seed", "Seed", "Same seed, same run: the results repeat exactly.", "int", offer=(0, 2**31 - 1)),
    Setting("train.sample_prompt", "Sample prompt", "Text the samples at each evaluation start from.", "text",
            live=True, applies="next evaluation"),
    Setting("train.sample_tokens", "Sample length", "Tokens in each sample at an evaluation (0: none).", "int",
            low=0, offer=(0, 100000), refusal="must be zero (no samples) or positive", live=True,
            applies="next evaluation"),
    Setting("train.early_stop_patience", "Early stop after", "End the run when this many evaluations in a row "
            "bring no improvement of the validation loss (0: never). The best checkpoint is kept.", "int", low=0,
            offer=(0, 10**6), refusal="must be zero (off) or a number of evaluations (3-10 is usual)"),
    Setting("train.early_stop_min_delta", "Early stop margin", "How much lower a validation loss must be to count "
            "as an improvement.", "float", low=0, offer=(0, 10), step=0.001,
            refusal="must be zero or a small positive loss difference"),
    Setting("train.on_divergence", "On divergence", "A loss that becomes NaN or spikes: skip that step's update "
            "and its batch, halve the learning rate and go on (three times within 100 steps stops the run), or "
            "stop at once. The last checkpoint is kept.", "choice",
            choices=(("rollback", "Roll back the step, halve the rate"), ("stop", "Stop the run"))),
    Setting("train.on_oom", "Out of memory", "When a step does not fit in memory: halve the micro-batch and double "
            "the accumulation (the same effective batch) and redo the step, ask you first (the run waits for the "
            "answer; from the command line it halves), or stop. The last checkpoint is kept either way.", "choice",
            choices=(("halve", "Halve the micro-batch, go on"), ("ask", "Ask me first"), ("stop", "Stop the run"))),
    Setting("train.spike_factor", "Spike threshold", "A loss above this many times its running median counts as "
            "a spike (0: only NaN or infinite losses).", "float", low=1, open_low=True, off=0, offer=(0, 1000),
            step=0.5, refusal="must be 0 (only NaN or infinite losses) or above 1 (3 is usual)"),
    Setting("train.log_interval", "Log every", "Steps between logged training losses.", "int", low=1,
            refusal="must be at least {low}", shown=False),
)

SETTINGS: dict[str, Setting] = {s.key: s for s in _TABLE}


def setting(key: str) -> Setting:
    """The description of `section.name`."""
    return SETTINGS[key]


def choices_of(key: str) -> tuple[str, ...]:
    """The values a choice setting accepts."""
    return SETTINGS[key].values()


def live_keys() -> tuple[str, ...]:
    """The settings a running run may change (live edits), in the Steer tab's order."""
    return tuple(s.key for s in _TABLE if s.live)


def form_settings(section: str) -> tuple[Setting, ...]:
    """The settings the form shows for a section, in the order it shows them."""
    return tuple(s for s in _TABLE if s.section == section and s.shown)


def applies_to(desc: Setting, arch: str) -> bool:
    """Whether desc is a setting of the block kind arch (the form hides the other kind's)."""
    return desc.arch in ("", arch)
