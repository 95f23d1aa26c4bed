"""Export a trained model: for Hugging Face tools (transformers, vLLM, llama.cpp's converter), or natively.

`hf` writes what `transformers.AutoModelForCausalLM.from_pretrained` loads with no code of ours, and a
model card; `native` writes our own safetensors + config + tokenizer.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from autogpt_gui.engine.run.disk import disk_full, is_disk_full, writing_into
from autogpt_gui.errors import CheckpointError

FORMATS = ("hf", "native")


def export_model(source: str | Path, out: str | Path, fmt: str = "hf") -> Path:
    """Export a checkpoint file or a run folder's best checkpoint into out, as `fmt` (hf or native)."""
    if fmt == "native":
        return export_weights(source, out)
    if fmt != "hf":
        raise CheckpointError(f"unknown export format '{fmt}'; choose {' or '.join(FORMATS)}", "--format")
    from autogpt_gui.engine.load import load_trained
    from autogpt_gui.engine.model.hf import export_hf

    model, tokenizer, cfg, counters = load_trained(source)
    with writing_into(out, "the export"):
        return export_hf(model, tokenizer, out, model_card(cfg, counters, Path(counters["checkpoint"])))


def model_card(cfg, counters: dict, checkpoint: Path) -> str:
    """README.md for an export: what the model is, how it was trained, how to load it."""
    from autogpt_gui.engine.run.runs import Run

    run = Run(checkpoint.parent.parent)
    steps, _ = run.read_metrics()
    step = int(counters.get("step", 0))
    train_loss = next((s["loss"] for s in reversed(steps) if s["step"] <= step), None)
    best, last = counters.get("best_val_loss"), counters.get("last_val_loss")
    fmt = lambda v: "-" if v is None or v != v or v == float("inf") else f"{v:.4f}"  # noqa: E731
    name = cfg.name or run.id
    base = cfg.model.init or "none: trained from scratch"
    return f"""---
library_name: transformers
tags: [gpt2, autogpt-gui]
---
# {name}

A GPT-2-architecture language model trained with autogpt-gui.

| | |
|---|---|
| base model | {base} |
| data | {cfg.data.source}{' ' + cfg.data.path if cfg.data.path else ''} (tokenizer: {cfg.data.tokenizer}) |
| steps | {step:,} |
| tokens seen | {int(counters.get("tokens_seen", 0)):,} |
| train loss (last logged) | {fmt(train_loss)} |
| validation loss (last / best) | {fmt(last)} / {fmt(best)} |
| shape | {cfg.model.n_layer if not cfg.model.init else 'from the base'} layers; context {cfg.model.block_size} |

## Load it

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
ids = tokenizer("Hello", return_tensors="pt").input_ids
print(tokenizer.decode(model.generate(ids, max_new_tokens=50, do_sample=True)[0]))
```

## The full configuration

```toml
{cfg.to_toml()}```
"""


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
