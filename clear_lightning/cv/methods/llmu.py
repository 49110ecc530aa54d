"""LLMU (Yao et al.): gradient ascent on forget + random-label descent on forget + KL to the original on retain."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import losses
from .base import UnlearningModule, UnlearnTask


class LLMU(UnlearningModule):
    """loss = −ε₁·AM(x_f, y_f) + ε₂·AM(x_f, y_random) + ε₃·KL(p₀ ‖ p) on retain."""

    def __init__(
        self, task: UnlearnTask, lr: float = 0.01, ascent: float = 0.5, mismatch: float = 1.0, kl: float = 1.0
    ) -> None:
        super().__init__(task, lr=lr)
        self.weights = (ascent, mismatch, kl)
        self.generator = torch.Generator().manual_seed(task.seed)

    def loss(self, xf: Tensor, yf: Tensor, xr: Tensor, yr: Tensor) -> Tensor:
        ascent, mismatch, kl = self.weights
        cos_f = self.student(xf)[1]
        random_y = torch.randint(cos_f.shape[1], yf.shape, generator=self.generator).to(yf.device)
        retain_kl = losses.kl_teacher_student(
            losses.class_log_probs(self.teacher(xr)[1], self.s),
            losses.class_log_probs(self.student(xr)[1], self.s),
        )
        return (
            -ascent * losses.am_softmax_loss(cos_f, yf, self.s, self.m)
            + mismatch * losses.am_softmax_loss(cos_f, random_y, self.s, self.m)
            + kl * retain_kl
        )
