"""What the Trainer is handed from outside, as protocols: train/ never imports the run folder (run/)."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Checkpoints(Protocol):
    """Where the Trainer saves its checkpoints: run.checkpoints.CheckpointFolder is the one in use."""

    def save(self, payload: dict, step: int, val_loss: float | None, is_best: bool, kind: str = "step") -> Path:
        """Write payload as the checkpoint of step; return its path."""
        ...
