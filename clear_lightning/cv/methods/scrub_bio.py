"""SCRUB-bio: the biometric SCRUB — cosine to the original's embedding, pushed down on forget, kept on retain."""

from __future__ import annotations

from torch import Tensor

from .. import losses
from .base import UnlearningModule, UnlearnTask


class ScrubBio(UnlearningModule):
    """loss = cos(f(x_f), f₀(x_f)) + γ·(1 − cos(f(x_r), f₀(x_r))) (benchmark.md §8)."""

    def __init__(self, task: UnlearnTask, lr: float = 0.01, gamma: float = 1.0) -> None:
        super().__init__(task, lr=lr)
        self.gamma = gamma

    def loss(self, xf: Tensor, yf: Tensor, xr: Tensor, yr: Tensor) -> Tensor:
        push = losses.cosine_similarity(self.student(xf)[0], self.teacher(xf)[0])
        keep = 1 - losses.cosine_similarity(self.student(xr)[0], self.teacher(xr)[0])
        return push + self.gamma * keep
