"""What a checkpoint holds of a Trainer, and putting it back: the exact-resume contract in one place.

Weights, optimizer and scaler, counters, the loader's position, every RNG stream, the precision the run
chose, the learning-rate multiplier and each extension's state (live edits, guards), plus the plain data
the session adds (configuration, model shape, tokenizer). Restoring all of it makes N + M steps through
a checkpoint bitwise equal to N + M straight.
"""
from __future__ import annotations

import random

import numpy as np

from autogpt_gui.engine.train import rates
from autogpt_gui.errors import CheckpointError


def capture(trainer) -> dict:
    loader = trainer.train_loader
    return {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict() if trainer.scaler else None,
        "trainer": {"step": trainer.step, "epoch": trainer.epoch, "tokens_seen": trainer.tokens_seen,
                    "elapsed": trainer.elapsed, "best_val_loss": trainer.best_val_loss,
                    "last_val_loss": trainer.last_val_loss},
        "loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
        "rng": capture_rng(),
        "precision": {"value": trainer.precision, "reason": trainer.precision_reason} if trainer.precision else None,
        "lr_scale": trainer.lr_scale,
        "extensions": {name: ext.state_dict() for name, ext in trainer.extensions.items()},
        **trainer.extra_state,
    }


def restore(trainer, state: dict) -> None:
    trainer.model.load_state_dict(state["model"])
    bases = rates.base_rates(trainer.optimizer)
    try:
        trainer.optimizer.load_state_dict(state["optimizer"])
    except (KeyError, ValueError) as err:  # saved by another optimizer (adamw against muon, ...)
        raise CheckpointError(f"this checkpoint's optimizer state does not fit the configured optimizer "
                              f"({type(trainer.optimizer).__name__}: {err}); resume with the optimizer it was "
                              "trained with", "optim.name") from None
    # the groups' base rates are the configuration's: the live edits below scale them again as they did
    rates.set_base_rates(trainer.optimizer, bases)
    trainer.restore_scaler(state.get("scaler"))  # the scaler exists once precision is known (prepare)
    t = state["trainer"]
    trainer.step, trainer.epoch, trainer.tokens_seen = int(t["step"]), int(t["epoch"]), int(t["tokens_seen"])
    trainer.elapsed, trainer.best_val_loss = float(t["elapsed"]), float(t["best_val_loss"])
    trainer.last_val_loss = t.get("last_val_loss")
    trainer.last_eval_step = trainer.step if trainer.last_val_loss is not None else -1
    if state.get("loader") is not None and hasattr(trainer.train_loader, "load_state_dict"):
        trainer.train_loader.load_state_dict(state["loader"])
    restore_rng(state["rng"])
    trainer.lr_scale = float(state.get("lr_scale", 1.0))
    for name, saved in (state.get("extensions") or {}).items():
        if name in trainer.extensions:
            trainer.extensions[name].load_state_dict(trainer, saved)
    chosen = state.get("precision")
    if chosen and trainer.config.precision == "auto" and trainer.precision is None:
        # decided once per run: a resumed run keeps the precision it started with, without probing
        trainer.precision = str(chosen["value"])
        trainer.precision_reason = f"{chosen['reason']}; chosen when the run started, kept on resume"
    trainer.marker("resumed", f"resumed at step {trainer.step}, epoch {trainer.epoch}, "
                              f"{trainer.tokens_seen:,} tokens seen")


def capture_rng() -> dict:
    """Python, NumPy, torch CPU and CUDA random states, as plain data and tensors."""
    import torch

    py = random.getstate()
    np_state: tuple = np.random.get_state(legacy=True)  # type: ignore[assignment]
    state: dict = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
