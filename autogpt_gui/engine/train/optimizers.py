"""The optimizers a run can train with: AdamW, Adam, SGD, and Muon with AdamW beside it.

Muon (Keller Jordan 2024; `torch.optim.Muon` from torch 2.9) orthogonalises the momentum of each hidden
weight matrix with a few Newton-Schulz iterations; it is what made the nanoGPT speedrun fast. It only
suits 2-D matrices inside the blocks: embeddings, the output head, norms, biases and LoRA adapters train
with AdamW at optim.lr, the matrices with Muon at optim.muon_lr. Both optimizers are one object to the
Trainer (`MuonWithAdamW`): its param_groups are theirs, AdamW's first, so every group keeps its own base
rate and the step's factor (rates.py) moves both rates in their ratio.

`torch.optim.Muon` orthogonalises in bf16, one matrix at a time. That suits a GPU; on a CPU without bf16
matrix units a bf16 matmul is several times slower than fp32, and at nanoGPT's CPU shape its step took
890 ms against the model's 70 ms (AMD EPYC, 2 cores). `Muon` below is torch's optimizer (its settings,
state and learning-rate adjustment) with one change: off CUDA it orthogonalises in fp32, the matrices of
one shape stacked into one batched product: 23 ms at that shape (benchmarks/time_to_loss.py uses it).
"""
from __future__ import annotations

import math
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


def _closure_loss(closure: Any) -> Any:
    """What an optimizer's step returns: the closure's loss, computed with gradients; None without one."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def orthogonalise(updates: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float,
                  dtype: torch.dtype) -> torch.Tensor:
    """Newton-Schulz's approximate orthogonalisation of a stack of same-shape matrices (batch, rows, cols)."""
    a, b, c = coefficients
    x = updates.to(dtype)
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)  # spectral norm at most 1
    for _ in range(steps):
        gram = x @ x.mT
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.mT if tall else x


class Muon(torch.optim.Muon if hasattr(torch.optim, "Muon") else torch.optim.Optimizer):  # type: ignore[misc]
    """torch.optim.Muon, orthogonalising in fp32 and by shape off CUDA (bf16, matrix by matrix, on CUDA)."""

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One Muon step of every group: Nesterov momentum, orthogonalised, decoupled weight decay."""
        loss = _closure_loss(closure)
        for group in self.param_groups:
            params: list[torch.Tensor] = []
            grads: list[torch.Tensor] = []
            bufs: list[torch.Tensor] = []
            self._init_group(group, params, grads, bufs)
            if not params:
                continue
            if params[0].device.type == "cuda":  # torch's own path, as fast as it gets there
                torch.optim._muon.muon(params, grads, bufs, lr=group["lr"], weight_decay=group["weight_decay"],
                                       momentum=group["momentum"], nesterov=group["nesterov"],
                                       ns_coefficients=group["ns_coefficients"], ns_steps=group["ns_steps"],
                                       eps=group["eps"], adjust_lr_fn=group["adjust_lr_fn"], has_complex=False)
                continue
            self._step_by_shape(group, params, grads, bufs)
        return loss

    @staticmethod
    def _step_by_shape(group: dict, params: list[torch.Tensor], grads: list[torch.Tensor],
                       bufs: list[torch.Tensor]) -> None:
        lr, momentum = float(group["lr"]), group["momentum"]
        shapes: dict[tuple[int, ...], list[int]] = {}
        for i, p in enumerate(params):
            shapes.setdefault(tuple(p.shape), []).append(i)
        for shape, index in shapes.items():
            updates = []
            for i in index:
                bufs[i].lerp_(grads[i], 1 - momentum)
                updates.append(grads[i].lerp(bufs[i], momentum) if group["nesterov"] else bufs[i])
            ortho = orthogonalise(torch.stack(updates), group["ns_coefficients"], group["ns_steps"], group["eps"],
                                  torch.float32)
            rate = lr * _shape_factor(group["adjust_lr_fn"], shape)
            for k, i in enumerate(index):
                params[i].mul_(1 - lr * group["weight_decay"])
                params[i].add_(ortho[k].to(params[i].dtype), alpha=-rate)


def _shape_factor(adjust_lr_fn: str | None, shape: tuple[int, ...]) -> float:
    """torch.optim.Muon's learning-rate adjustment for a matrix of this shape."""
    rows, cols = shape[:2]
    if adjust_lr_fn in (None, "original"):
        return math.sqrt(max(1, rows / cols))
    return 0.2 * math.sqrt(max(rows, cols)) if adjust_lr_fn == "match_rms_adamw" else 1.0


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon on the hidden matrices and AdamW on the rest, stepped, zeroed and saved as one optimizer."""

    def __init__(self, adamw: torch.optim.Optimizer, muon: torch.optim.Optimizer):
        self.adamw, self.muon = adamw, muon
        super().__init__([*adamw.param_groups, *muon.param_groups], {})
        self.param_groups = [*adamw.param_groups, *muon.param_groups]  # the same dicts: a rate set here is theirs

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One step of both."""
        loss = _closure_loss(closure)
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
    muon = Muon([{"params": hidden, "weight_decay": o.weight_decay, "decay": True}], lr=o.muon_lr,
                            momentum=MUON_MOMENTUM)
    return MuonWithAdamW(adamw, muon)
