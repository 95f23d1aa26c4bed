"""Export a trained model as safetensors weights with its config and tokenizer beside them."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from autogpt_gui.errors import CheckpointError


def export_weights(source: str | Path, out: str | Path) -> Path:
    """Write model.safetensors, model_config.json, config.toml and tokenizer.json into out."""
    from safetensors.torch import save_model

    from autogpt_gui.engine.inference import load_model

    model, tokenizer, cfg = load_model(source)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        save_model(model, str(out / "model.safetensors"))  # ties lm_head to wte once, not twice
        (out / "model_config.json").write_text(json.dumps(asdict(model.config), indent=1))
        cfg.save(out / "config.toml")
        tokenizer.save(out / "tokenizer.json")
    except OSError as err:
        raise CheckpointError(f"could not export to {out}: {err.strerror or err}", "export") from None
    return out


def load_exported(folder: str | Path):
    """The model and tokenizer of an export folder (for checking an export round-trips)."""
    from safetensors.torch import load_model

    from autogpt_gui.engine.model import AutoGPTModel, GPTConfig
    from autogpt_gui.engine.tokenizers import load_tokenizer

    folder = Path(folder)
    model = AutoGPTModel(GPTConfig(**json.loads((folder / "model_config.json").read_text())))
    load_model(model, str(folder / "model.safetensors"))
    return model.eval(), load_tokenizer(folder / "tokenizer.json")
