"""Low-rank adapters (LoRA, Hu et al. 2021) on plain torch, the way torchtune's and LitGPT's LoRALinear work.

A targeted Linear keeps its pretrained weight W frozen and learns two small matrices: its output becomes
W x + (alpha / rank) * B A dropout(x), with A (rank x in) initialised like peft's (Kaiming uniform) and
B (out x rank) zero, so training starts from the base model exactly. Only A and B train and only they
are saved in step checkpoints; `merged_state` folds B A into W for export and sampling, after which the
model is an ordinary one. `peft` is the oracle in the tests, not a dependency: it pulls in all of
`transformers`, which the standalone bundle does without.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from autogpt_gui.config import lora_layers


class LoRALinear(nn.Linear):
    """nn.Linear (weight and bias under their usual names, so base weights load as they are) plus A and B."""

    def __init__(self, in_features: int, out_features: int, bias: bool, rank: int, alpha: float, dropout: float):
        super().__init__(in_features, out_features, bias=bias)
        self.rank, self.alpha = rank, alpha
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank))
        self.lora_dropout = nn.Dropout(dropout)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low_rank = F.linear(F.linear(self.lora_dropout(x), self.lora_A), self.lora_B)
        return F.linear(x, self.weight, self.bias) + low_rank * self.scaling

    def merged_weight(self) -> torch.Tensor:
        return self.weight + self.scaling * (self.lora_B @ self.lora_A)


def make_linear(cfg, name: str, n_in: int, n_out: int, bias: bool | None = None) -> nn.Linear:
    """The layer `name` of a block (with biases if `bias`, else if cfg.bias): with an adapter when the model
    fine-tunes with LoRA and targets it (config.lora_layers; the default, every linear layer, is QLoRA's advice)."""
    bias = cfg.bias if bias is None else bias
    if getattr(cfg, "finetune", "full") == "lora" and name in lora_layers(cfg.lora_targets, cfg.arch):
        return LoRALinear(n_in, n_out, bias, cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout)
    return nn.Linear(n_in, n_out, bias=bias)


def freeze_base(model: nn.Module) -> None:
    """Train only the adapters; the model's state_dict then holds only them, and loading one expects only them."""
    for name, p in model.named_parameters():
        p.requires_grad = ".lora_" in name
    model.register_state_dict_post_hook(_adapters_only)
    model.register_load_state_dict_post_hook(_base_not_expected)


def _adapters_only(module: nn.Module, state: dict, prefix: str, local_metadata) -> None:
    for key in [k for k in state if k.startswith(prefix) and ".lora_" not in k]:
        del state[key]


def _base_not_expected(module: nn.Module, incompatible) -> None:
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if ".lora_" in k]


def load_base(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load a pretrained model's weights under an adapted model: everything but the adapters must be there."""
    own = dict(model.named_parameters(remove_duplicate=False))
    missing = sorted(k for k in own if ".lora_" not in k and k not in weights)
    unexpected = sorted(k for k in weights if k not in own)
    if missing or unexpected:
        raise RuntimeError("Error(s) in loading the base weights:\n"
                           f"missing: {', '.join(missing[:5]) or '-'}\nunexpected: {', '.join(unexpected[:5]) or '-'}")
    with torch.no_grad():
        for key, tensor in weights.items():
            if own[key].shape != tensor.shape:
                raise RuntimeError(f"Error(s) in loading the base weights:\n{key} is {tuple(tensor.shape)}, "
                                   f"the model needs {tuple(own[key].shape)}")
            own[key].copy_(tensor)


def merged_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights with every adapter folded into its layer: what a plain model loads."""
    state = {k: p.detach() for k, p in model.named_parameters(remove_duplicate=False) if ".lora_" not in k}
    state.update({k: b for k, b in model.named_buffers()})
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, LoRALinear):
                state[f"{name}.weight"] = module.merged_weight().detach()
    return state


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
