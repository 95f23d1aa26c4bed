"""RMSNorm (Zhang & Sennrich 2019) computed in float32, as transformers' LlamaRMSNorm does.

Under autocast a bf16 input would meet a float32 weight, which torch's fused kernel refuses (with a warning);
normalising in float32 and returning the input's dtype is also the more accurate of the two.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F


class RMSNorm(nn.RMSNorm):
    """nn.RMSNorm (its weight under the usual name) that normalises in float32 whatever the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float() if self.weight is not None else None
        return F.rms_norm(x.float(), self.normalized_shape, weight, self.eps).to(x.dtype)
