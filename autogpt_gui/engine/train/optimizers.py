"""The optimizers a run can train with: AdamW, Adam, SGD, and Muon with AdamW beside it.

Muon (Keller Jordan 2024; `torch.optim.Muon` from torch 2.9) orthogonalises the momentum of each hidden
weight matrix with a few Newton-Schulz iterations; it is what made the nanoGPT speedrun fast. It only
suits 2-D matrices inside the blocks: embeddings, the output head, norms, biases and LoRA adapters train
with AdamW at optim.lr, the matrices with Muon at optim.muon_lr. Both optimizers are one object to the
Trainer (`MuonWithAdamW`): its param_groups are theirs, AdamW's first, so every group keeps its own base
rate and the step's factor (rates.py) moves both rates in their ratio.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from autogpt_gui.errors import ConfigError

if TYPE_CHECKING:
    from autogpt_gui.config import OptimConfig

MUON_MOMENTUM = 0.95  # Muon's own default and the speedrun's; AdamW's beta1 (0.9) is a different quantity


def has_muon() -> bool:
    """Whether this torch has torch.optim.Muon (2.9 and newer)."""
    return hasattr(torch.optim, "Muon")


def is_hidden_matrix(name: str, param: torch.Tensor) -> bool:
    """Muon's share of a model: the 2-D weights inside the blocks, LoRA adapters excepted."""
    return param.dim() == 2 and name.startswith("blocks.") and "lora_" not in name


def _decay_groups(params: list[torch.Tensor], weight_decay: float) -> list[dict]:
    """Weight decay only on matrices (not biases, norms); "decay" marks which groups a live edit changes."""
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay, "decay": True},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, "decay": False}]


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon on the hidden matrices and AdamW on the rest, stepped, zeroed and saved as one optimizer."""

    def __init__(self, adamw: torch.optim.Optimizer, muon: torch.optim.Optimizer):
        self.adamw, self.muon = adamw, muon
        super().__init__([*adamw.param_groups, *muon.param_groups], {})
        self.param_groups = [*adamw.param_groups, *muon.param_groups]  # the same dicts: a rate set here is theirs

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One step of both."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.adamw.step()
        self.muon.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        """Both optimizers' states, by name."""
        return {"adamw": self.adamw.state_dict(), "muon": self.muon.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Put back what state_dict() returned (loading makes new group dicts: this object takes them)."""
        if set(state_dict) != {"adamw", "muon"}:
            raise ValueError("this checkpoint's optimizer is not Muon with AdamW; resume with its own optim.name")
        self.adamw.load_state_dict(state_dict["adamw"])
        self.muon.load_state_dict(state_dict["muon"])
        self.param_groups = [*self.adamw.param_groups, *self.muon.param_groups]


def build_optimizer(model: torch.nn.Module, o: OptimConfig, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer optim.name names for the model's trainable parameters; AdamW and Adam fused on CUDA."""
    fused = {"fused": True} if device.type == "cuda" else {}
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if o.name == "muon" and any(is_hidden_matrix(n, p) for n, p in named):
        return _muon_with_adamw(named, o, fused)
    groups = _decay_groups([p for _, p in named], o.weight_decay)
    if o.name in ("adamw", "muon"):  # muon with no hidden matrix to train (LoRA adapters): AdamW alone
        return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), **fused)
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=o.lr, betas=(o.beta1, o.beta2), **fused)
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.beta1)


def _muon_with_adamw(named: Sequence[tuple[str, torch.Tensor]], o: OptimConfig, fused: dict) -> torch.optim.Optimizer:
    if not has_muon():
        raise ConfigError([("optim.name", f"muon needs torch 2.9 or newer (this is {torch.__version__}): "
                                          "choose adamw, or upgrade torch")])
    hidden = [p for n, p in named if is_hidden_matrix(n, p)]
    rest = [p for n, p in named if not is_hidden_matrix(n, p)]
    adamw = torch.optim.AdamW(_decay_groups(rest, o.weight_decay), lr=o.lr, betas=(o.beta1, o.beta2), **fused)
    muon = torch.optim.Muon([{"params": hidden, "weight_decay": o.weight_decay, "decay": True}], lr=o.muon_lr,
                            momentum=MUON_MOMENTUM)
    return MuonWithAdamW(adamw, muon)
