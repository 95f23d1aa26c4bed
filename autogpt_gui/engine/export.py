"""Export a trained model: for Hugging Face tools (transformers, vLLM), for llama.cpp and Ollama, or natively.

`hf` writes what `transformers.AutoModelForCausalLM.from_pretrained` loads with no code of ours, and a
model card; `gguf` writes one .gguf file that llama.cpp runs (read back and checked; with verify, run by
llama.cpp and compared with ours), an Ollama Modelfile and a model card; `native` writes our own
safetensors + config + tokenizer.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from autogpt_gui.engine.run.disk import disk_full, is_disk_full, writing_into
from autogpt_gui.errors import CheckpointError

FORMATS = ("hf", "gguf", "native")


def export_model(source: str | Path, out: str | Path, fmt: str = "hf", quant: str = "f32") -> Path:
    """Export a checkpoint file or a run folder's best checkpoint into out, as `fmt` (hf, gguf or native)."""
    if fmt == "native":
        return export_weights(source, out)
    if fmt == "gguf":
        return export_gguf(source, out, quant).path
    if fmt != "hf":
        raise CheckpointError(f"unknown export format '{fmt}'; choose {' or '.join(FORMATS)}", "--format")
    from autogpt_gui.engine.load import load_trained
    from autogpt_gui.engine.model.hf import export_hf

    model, tokenizer, cfg, counters = load_trained(source)
    with writing_into(out, "the export"):
        card = model_card(cfg, counters, Path(counters["checkpoint"]), arch=architecture_name(model.config))
        return export_hf(model, tokenizer, out, card)


def model_card(cfg, counters: dict, checkpoint: Path, load: str | None = None, arch: str = "") -> str:
    """README.md for an export: what the model is, how it was trained, how to load it (`load`: markdown that
    replaces the transformers snippet; `arch`: the architecture's name, else the model's own)."""
    from autogpt_gui.engine.run.runs import Run

    run = Run(checkpoint.parent.parent)
    steps, _ = run.read_metrics()
    step = int(counters.get("step", 0))
    train_loss = next((s["loss"] for s in reversed(steps) if s["step"] <= step), None)
    best, last = counters.get("best_val_loss"), counters.get("last_val_loss")
    fmt = lambda v: "-" if v is None or v != v or v == float("inf") else f"{v:.4f}"  # noqa: E731
    name = cfg.name or run.id
    base = cfg.model.init or "none: trained from scratch"
    arch = arch or architecture_name(cfg.model)
    return f"""---
library_name: {"gguf" if load else "transformers"}
tags: [{arch.lower()}, autogpt-gui]
---
# {name}

A {arch}-architecture language model trained with autogpt-gui.

| | |
|---|---|
| base model | {base} |
| data | {cfg.data.source}{' ' + cfg.data.path if cfg.data.path else ''} (tokenizer: {cfg.data.tokenizer}) |
| steps | {step:,} |
| tokens seen | {int(counters.get("tokens_seen", 0)):,} |
| train loss (last logged) | {fmt(train_loss)} |
| validation loss (last / best) | {fmt(last)} / {fmt(best)} |
| shape | {cfg.model.n_layer if not cfg.model.init else 'from the base'} layers; context {cfg.model.block_size} |

{load or TRANSFORMERS_LOAD}

## The full configuration

```toml
{cfg.to_toml()}```
"""


TRANSFORMERS_LOAD = """## Load it

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
ids = tokenizer("Hello", return_tensors="pt").input_ids
print(tokenizer.decode(model.generate(ids, max_new_tokens=50, do_sample=True)[0]))
```
"""


def architecture_name(model_cfg) -> str:
    """The architecture a model card names: GPT-2, or the Llama family member the export declares."""
    from autogpt_gui.engine.model.hf_export import hf_model_type

    names = {"gpt2": "GPT-2", "llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"}
    kind = hf_model_type(model_cfg)
    return names.get(kind, kind)


def export_weights(source: str | Path, out: str | Path) -> Path:
    """Native: write model.safetensors, model_config.json, config.toml and tokenizer.json into out."""
    from safetensors.torch import save_model

    from autogpt_gui.engine.load import load_model

    model, tokenizer, cfg = load_model(source)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        save_model(model, str(out / "model.safetensors"))  # ties lm_head to wte once, not twice
        (out / "model_config.json").write_text(json.dumps(asdict(model.config), indent=1))
        cfg.save(out / "config.toml")
        tokenizer.save(out / "tokenizer.json")
    except OSError as err:
        if is_disk_full(err):
            raise disk_full(out, "the export") from None
        raise CheckpointError(f"could not export to {out}: {err.strerror or err}", "export") from None
    return out


def load_exported(folder: str | Path):
    """The model and tokenizer of an export folder (for checking an export round-trips)."""
    from safetensors.torch import load_model

    from autogpt_gui.engine.data.tokenizers import load_tokenizer
    from autogpt_gui.engine.model.gpt import AutoGPTModel, GPTConfig

    folder = Path(folder)
    model = AutoGPTModel(GPTConfig(**json.loads((folder / "model_config.json").read_text())))
    load_model(model, str(folder / "model.safetensors"))
    return model.eval(), load_tokenizer(folder / "tokenizer.json")


@dataclass
class GGUFExport:
    """A GGUF export: the file written and what a person should know about it (lines to print)."""

    path: Path
    notes: list[str]


def export_gguf(source: str | Path, out: str | Path, quant: str = "f32", verify: bool = False,
                chat_template: str | None = None, eot_ids: list[int] | None = None) -> GGUFExport:
    """Write <name>-<quant>.gguf (or out itself, when it is named *.gguf), an Ollama Modelfile and a model card
    into out (beside it); read the file back and check it;
    with verify, run it in llama.cpp and compare its greedy tokens with ours."""
    from autogpt_gui.engine.load import load_trained
    from autogpt_gui.engine.model.chat import export_template
    from autogpt_gui.engine.model.gguf import Q8_BLOCK, QUANTS, write_gguf
    from autogpt_gui.engine.model.gguf_check import check_gguf, llama_cpp_available, verify_gguf
    from autogpt_gui.engine.model.gguf_vocab import gguf_vocab
    from autogpt_gui.engine.model.hf_export import _atomic_write
    from autogpt_gui.engine.model.ollama import modelfile

    if quant not in QUANTS:
        raise CheckpointError(f"unknown GGUF type '{quant}'; choose {', '.join(QUANTS)}", "--quant")
    model, tokenizer, cfg, counters = load_trained(source)
    gguf_vocab(tokenizer)  # a char model is refused before anything is written
    if chat_template is None:  # a model trained on conversations here, or a base with a template of its own
        chat_template, eot_ids = export_template(tokenizer, model.config)
    checkpoint = Path(counters["checkpoint"])
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", cfg.name or checkpoint.parent.parent.name).strip("-.") or "model"
    out = Path(out)
    if out.suffix.lower() == ".gguf" and not out.is_dir():  # a file's name: the Modelfile and card go beside it
        out, path = out.parent, out
    else:
        path = out / f"{stem}-{quant}.gguf"
    stops = tokenizer.token_strings(eot_ids or [])
    notes = []
    with writing_into(out, "the export"):
        try:
            out.mkdir(parents=True, exist_ok=True)
            plan = write_gguf(model, tokenizer, path, quant, stem, chat_template, eot_ids)
        except OSError as err:
            if is_disk_full(err):
                raise
            raise CheckpointError(f"could not write {path}: {err.strerror or err}", "export") from None
        try:
            check_gguf(path, plan, model)
        except CheckpointError:
            path.unlink(missing_ok=True)  # a file that does not read back as written is no export
            raise
        notes.append(f"read back: {plan.arch}, {len(plan.tensors)} tensors, shapes and metadata as written")
        if plan.kept:
            notes.append(f"q8_0 needs rows of a multiple of {Q8_BLOCK} values: {', '.join(plan.kept)} kept at f16")
        exact_gelu = model.config.arch == "gpt2" and model.config.activation != "gelu_tanh"
        if exact_gelu:
            notes.append("this model was trained with exact GELU; llama.cpp's gpt2 graph computes the tanh "
                         "approximation, so its outputs differ slightly (the llama.cpp check measures how much)")
        if verify or (exact_gelu and llama_cpp_available()):
            notes.append(verify_gguf(path, model, tokenizer).describe())
        text, note = modelfile(path.name, chat_template, stops)
        notes += [note] if note else []
        card = model_card(cfg, counters, checkpoint, gguf_card(path.name, stem, notes), architecture_name(model.config))
        for name, content in (("Modelfile", text), ("README.md", card)):
            _atomic_write(out / name, lambda tmp, content=content: tmp.write_text(content, encoding="utf-8"))
    return GGUFExport(path, notes)


def gguf_card(file: str, stem: str, notes: list[str]) -> str:
    """The model card's section on running the .gguf: llama.cpp and Ollama commands, and what was checked."""
    checked = "".join(f"- {n}\n" for n in notes)
    return f"""## Run it

With llama.cpp:

```sh
llama-cli -m {file} -p "Once upon a time" -n 100
```

With Ollama (the Modelfile beside the file):

```sh
ollama create {stem.lower()} -f Modelfile
ollama run {stem.lower()} "Once upon a time"
```

LM Studio and Jan open the .gguf file as it is.

## Checked at export

{checked}"""
