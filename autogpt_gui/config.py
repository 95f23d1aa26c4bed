"""Run configuration as data: dataclasses with defaults, validate(), TOML round trip, presets.

Imports neither torch nor Qt, so the window can validate a form before torch has loaded.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomli_w
import tomllib

from autogpt_gui.errors import ConfigError
from autogpt_gui.settings import LLAMA_PRESETS, PRESETS, SETTINGS, choices_of

SOURCES = choices_of("data.source")
TOKENIZERS = choices_of("data.tokenizer")
ACTIVATIONS = choices_of("model.activation")
OPTIMIZERS = choices_of("optim.name")
SCHEDULES = choices_of("optim.schedule")
PRECISIONS = choices_of("train.precision")
FINETUNE = choices_of("model.finetune")
DIVERGENCE = choices_of("train.on_divergence")
ON_OOM = choices_of("train.on_oom")
BLOCK_LINEARS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")  # a block's layers, as GPT-2 names them
LORA_TARGETS: tuple[str, ...] = ("c_attn", "c_proj", "c_fc", "attn.c_proj", "mlp.c_proj")  # names that pick them
# The llama kind's layers, each with the GPT-2 layer it stands for: the default targets pick all seven.
LLAMA_LINEARS = {"attn.q_proj": "attn.c_attn", "attn.k_proj": "attn.c_attn", "attn.v_proj": "attn.c_attn",
                 "attn.o_proj": "attn.c_proj", "mlp.gate_proj": "mlp.c_fc", "mlp.up_proj": "mlp.c_fc",
                 "mlp.down_proj": "mlp.c_proj"}
LORA_TARGETS += tuple(k.split(".")[1] for k in LLAMA_LINEARS)
# What a run may choose for itself when its shape comes from a pretrained model (model.init).
RUN_CHOICES = ("block_size", "dropout", "finetune", "lora_rank", "lora_alpha", "lora_dropout", "lora_targets")


@dataclass
class ModelConfig:
    """Shape of the network, the one definition (engine.model calls it GPTConfig).

    vocab_size 0 in a run's configuration means 'take it from the tokenizer'.
    """

    preset: str = "micro"
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = False  # nanoGPT's choice: as good, and ~5 % faster on a CPU (benchmarks/throughput.py)
    vocab_size: int = 0
    init: str = ""  # "": from scratch; else a Hugging Face GPT-2 folder or hub id whose shape and weights we take
    activation: str = "gelu_tanh"  # GPT-2's tanh approximation, which llama.cpp computes too; or "gelu" (exact)
    ln_eps: float = 1e-5
    n_positions: int = 0  # learned positions; 0 means block_size (a pretrained model may have more)
    finetune: str = "full"  # of a pretrained model: "full" trains every weight, "lora" only low-rank adapters
    lora_rank: int = 8
    lora_alpha: float = 16.0  # adapters are scaled by alpha / rank
    lora_dropout: float = 0.0
    lora_targets: str = "c_attn,c_proj,c_fc"  # layers of each block that get adapters (peft's names)
    # The block kind, and the llama kind's flags under Hugging Face's names (Llama, Mistral, Qwen2, Qwen3).
    arch: str = "gpt2"  # "gpt2": LayerNorm, GELU, learned positions; "llama": RMSNorm, SwiGLU, rotary positions
    model_type: str = ""  # the Hugging Face model_type it came from and exports as; "": the one its flags imply
    n_kv_head: int = 0  # key/value heads, fewer than n_head for grouped-query attention; 0: n_head
    head_dim: int = 0  # width of one head; 0: n_embd // n_head (Qwen3 sets its own)
    intermediate_size: int = 0  # SwiGLU's hidden width; 0: 8/3 of the width, a multiple of 64
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0  # base of the rotary frequencies
    rope_scaling: str = ""  # "" or "llama3": Llama 3.1+'s stretched low frequencies, with the four below
    rope_factor: float = 8.0
    rope_low_freq_factor: float = 1.0
    rope_high_freq_factor: float = 4.0
    rope_original_max_position_embeddings: int = 8192
    qk_norm: bool = False  # RMSNorm on every head's queries and keys (Qwen3)
    attention_bias: bool = False  # biases on q, k, v and o (Llama's flag; `bias` is the MLP's)
    qkv_bias: bool = False  # biases on q, k and v only (Qwen2)
    tie_word_embeddings: bool = True  # the output layer is the token embedding (GPT-2 always ties)
    sliding_window: int = 0  # each token sees at most this many tokens back, itself included (Mistral); 0: all
    bos_token_id: int = -1  # the tokenizer's special tokens (-1: none); sampling stops at any of eos_token_ids
    eos_token_ids: str = ""
    pad_token_id: int = -1

    @classmethod
    def from_preset(cls, name: str, vocab_size: int = 256, **overrides) -> ModelConfig:
        """A preset's shape (see PRESETS) with a vocabulary and any field changed."""
        problems: list[tuple[str, str]] = []
        cfg = apply_preset(cls(vocab_size=vocab_size), name, problems)
        if problems:
            raise ConfigError(problems)
        return replace(cfg, **overrides)


@dataclass
class DataConfig:
    """Where the text comes from and how it becomes tokens."""

    source: str = "python-docs"
    path: str = ""
    tokenizer: str = "auto"  # a pretrained model's own with model.init, else char (see tokenizer_kind)
    bpe_vocab_size: int = 1024
    val_fraction: float = 0.1
    text_field: str = "text"
    task_digits: int = 2
    chat_template: str = "model"  # chat: "model" (its own; ChatML where it has none), "chatml" or a Jinja file
    train_on: str = "assistant"  # chat: the loss over "assistant" replies (and their end-of-turn tokens), or "all"


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule."""

    name: str = "adamw"
    lr: float = 1e-3
    muon_lr: float = 0.02  # the hidden matrices' rate when name is "muon"
    min_lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1
    schedule: str = "cosine"
    warmup_steps: int = 100
    decay_fraction: float = 0.2
    grad_clip: float = 1.0


@dataclass
class TrainConfig:
    """How long, how big, how often; what the Trainer reads."""

    batch_size: int = 12
    grad_accum: int = 1
    max_steps: int = 2000
    epochs: int = 0
    eval_interval: int = 250
    eval_batches: int = 20
    checkpoint_interval: int = 500
    keep_last: int = 3
    precision: str = "auto"
    compile: bool = False
    device: str = "auto"
    seed: int = 1337
    log_interval: int = 1
    sample_tokens: int = 200
    sample_prompt: str = ""
    early_stop_patience: int = 0  # evaluations without improvement before the run ends (0: never)
    early_stop_min_delta: float = 0.0  # how much lower a validation loss must be to count as improvement
    on_divergence: str = "rollback"  # a non-finite or spiking loss: "rollback" that step and go on, or "stop"
    spike_factor: float = 3.0  # a loss above this times its running median is a spike (0: only NaN / inf)
    on_oom: str = "halve"  # out of memory at a step: "halve" the micro-batch (twice the accumulation), "ask"
    # the user first (the window; elsewhere nobody can answer, so it halves), or "stop"


@dataclass
class RunConfig:
    """Everything needed to repeat or resume a run."""

    name: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # ---- conversion -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from nested dicts; unknown sections or keys raise ConfigError naming them."""
        cfg = cls()
        problems: list[tuple[str, str]] = []
        for key, value in data.items():
            if key == "name":
                cfg.name = str(value)
            elif key in SECTIONS:
                if not isinstance(value, dict):
                    problems.append((key, "must be a table of settings"))
                    continue
                section = getattr(cfg, key)
                if key == "model" and value.get("preset", "custom") != "custom":
                    section = apply_preset(section, str(value["preset"]), problems)
                for k, v in value.items():
                    try:
                        section = set_field(section, key, k, v)
                    except ConfigError as err:
                        problems.extend(err.problems)
                setattr(cfg, key, section)
            else:
                problems.append((key, f"unknown section; expected one of {', '.join(SECTIONS)}"))
        if problems:
            raise ConfigError(problems)
        return cfg

    def to_toml(self) -> str:
        """TOML that from_toml reads back equal, whatever the strings hold (control characters, quotes, ...)."""
        return tomli_w.dumps({"name": self.name, **{section: asdict(getattr(self, section)) for section in SECTIONS}})

    @classmethod
    def from_toml(cls, text: str) -> RunConfig:
        try:
            return cls.from_dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as err:
            raise ConfigError([("config", f"not valid TOML ({err}); check the line it names")]) from None

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError([("config", f"file {p} does not exist; check the path")]) from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError([("config", f"cannot read {p}: {err}")]) from None
        return cls.from_toml(text)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_toml(), encoding="utf-8")

    def with_overrides(self, assignments: list[str]) -> RunConfig:
        """Apply `section.key=value` strings (the CLI's --set); values parse as TOML, else text."""
        cfg = replace(self)
        problems: list[tuple[str, str]] = []
        for item in assignments:
            name, sep, raw = item.partition("=")
            section, dot, key = name.strip().partition(".")
            if not sep or not dot:
                problems.append((name or item, "write --set section.key=value, e.g. --set train.max_steps=500"))
                continue
            if section not in SECTIONS:
                problems.append((name, f"unknown section '{section}'; expected one of {', '.join(SECTIONS)}"))
                continue
            value = _parse_value(raw.strip())
            try:
                target = getattr(cfg, section)
                if section == "model" and key == "preset" and value != "custom":
                    target = apply_preset(target, str(value), problems)
                setattr(cfg, section, set_field(target, section, key, value))
            except ConfigError as err:
                problems.extend(err.problems)
        if problems:
            raise ConfigError(problems)
        return cfg

    # ---- checks -----------------------------------------------------------------------
    def validate(self) -> list[tuple[str, str]]:
        """Every problem as (field, message); an empty list means the run can start."""
        from autogpt_gui.validation import validate

        return validate(self)

    @classmethod
    def recommended(cls) -> RunConfig:
        """What the window's form starts from: the defaults with RECOMMENDED's recipe."""
        return cls().with_overrides(list(RECOMMENDED))


SECTIONS = ("model", "data", "optim", "train")
# The recipe that reached nanoGPT's loss fastest on a CPU (benchmarks/time_to_loss.py; README "Speed"): the
# llama kind at micro's size, Muon beside AdamW at a higher rate, half of nanoGPT's steps. The window's form
# and the shakespeare and python-docs examples use it; the dataclass defaults stay the seed's (AutoGPTModel()).
RECOMMENDED = ("model.preset='llama-micro'", "optim.name='muon'", "optim.lr=3e-3", "optim.muon_lr=0.02",
               "optim.warmup_steps=50", "train.max_steps=1000")


def apply_preset(model: ModelConfig, name: str, problems: list[tuple[str, str]]) -> ModelConfig:
    """model with the preset's shape and block kind; an unknown name is added to problems."""
    if name not in PRESETS:
        problems.append(("model.preset", f"unknown preset '{name}'; choose one of {', '.join(PRESETS)} or custom"))
        return model
    n_layer, n_head, n_embd, block_size = PRESETS[name]
    fresh = ModelConfig()
    kind = {key: getattr(fresh, key) for key in PRESET_KIND_KEYS}  # a preset's block kind starts from defaults
    if name in LLAMA_PRESETS:
        kind.update(arch="llama", **LLAMA_PRESETS[name])
    return replace(model, preset=name, n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size,
                   **kind)


# what choosing a preset sets besides the shape: the block kind and the llama kind's designer fields
PRESET_KIND_KEYS = ("arch", "model_type", "n_kv_head", "head_dim", "intermediate_size", "rope_theta", "qk_norm",
                    "tie_word_embeddings")


_TYPES = {"int": "int", "float": "float", "sci": "float", "bool": "bool"}  # the rest are text


def set_field(section_obj, section: str, key: str, value):
    """A copy of section_obj with key set to value converted to its setting's type (and a choice's spelling)."""
    types = {f.name: f.type for f in fields(section_obj)}
    if key not in types:
        raise ConfigError([(f"{section}.{key}", f"unknown setting; {section} has {', '.join(types)}")])
    desc = SETTINGS.get(f"{section}.{key}")
    kind = _TYPES.get(desc.kind, "str") if desc else str(types[key])
    offered = desc.values() if desc else ()
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = value.lower() in ("true", "1", "yes")
            value = bool(value)
        elif kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(value)
        elif kind == "float":
            value = float(value)
        elif isinstance(value, list):  # a TOML list of names, e.g. lora_targets = ["c_attn", "c_fc"]
            value = ",".join(str(v) for v in value)
        else:
            value = str(value)
            # a choice spelled in other letters (--set train.precision=BF16) is that choice
            value = next((c for c in offered if c.lower() == value.lower()), value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError([(f"{section}.{key}", f"'{value}' is not a valid {kind}")]) from None
    return replace(section_obj, **{key: value})


def tokenizer_kind(choice: str, pretrained: bool) -> str:
    """The tokenizer a run reads text with: 'auto' is the pretrained model's own ('model'), else 'char'."""
    if choice == "auto":
        return "model" if pretrained else "char"
    return choice


def lora_layers(targets: str, arch: str = "gpt2") -> list[str]:
    """The block layers a comma-separated target list names, matched by suffix as peft does ('c_proj': both);
    a llama-kind layer is also picked by the GPT-2 layer it stands for."""
    names = [t.strip() for t in targets.split(",") if t.strip()]
    picks = lambda k: any(k == t or k.endswith("." + t) for t in names)  # noqa: E731
    if arch == "llama":
        return [k for k, gpt2 in LLAMA_LINEARS.items() if picks(k) or picks(gpt2)]
    return [k for k in BLOCK_LINEARS if picks(k)]


def check(cfg: RunConfig) -> RunConfig:
    """Raise ConfigError with every problem, or return cfg unchanged."""
    from autogpt_gui.validation import validate

    problems = validate(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg


def _parse_value(raw: str):
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
