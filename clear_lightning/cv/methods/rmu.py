"""RMU (Li et al.): steer forget embeddings to a fixed random direction, keep retain embeddings unchanged."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from .. import losses
from .base import UnlearningModule, UnlearnTask


class RMU(UnlearningModule):
    """loss = ‖n(f(x_f)) − u‖² + α·‖n(f(x_r)) − n(f₀(x_r))‖², n = L2-normalise, u a seeded random unit vector.

    On the normalised embedding (the space identification uses), so the steering scale needs no tuning."""

    def __init__(self, task: UnlearnTask, lr: float = 0.01, alpha: float = 5.0) -> None:
        super().__init__(task, lr=lr)
        u = torch.rand(task.original.dim, generator=torch.Generator().manual_seed(task.seed))
        self.register_buffer("target", F.normalize(u, dim=0))
        self.alpha = alpha

    def loss(self, xf: Tensor, yf: Tensor, xr: Tensor, yr: Tensor) -> Tensor:
        forget = losses.rmu_loss(F.normalize(self.student(xf)[0], dim=-1), self.target)
        kept = F.normalize(self.teacher(xr)[0], dim=-1)
        retain = losses.rmu_loss(F.normalize(self.student(xr)[0], dim=-1), kept)
        return forget + self.alpha * retain
