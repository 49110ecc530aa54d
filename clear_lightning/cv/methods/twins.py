"""Twins: make the forget images look like *new* photos of their person to the model.

The original's embedding of an augmented view (flip + shift) is how it sees a face it did not memorise
pixel for pixel; the student matches that on the forget images, and the retain term keeps identification.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import losses
from ..data import augment
from .base import UnlearningModule, UnlearnTask


class Twins(UnlearningModule):
    """loss = (1 − cos(f(x_f), f₀(aug(x_f)))) + γ·AM-softmax(x_r) (benchmark.md §8: original on augmented forget + retain)."""

    def __init__(self, task: UnlearnTask, lr: float = 0.01, gamma: float = 1.0) -> None:
        super().__init__(task, lr=lr)
        self.gamma = gamma
        self.generator = torch.Generator().manual_seed(task.seed)

    def loss(self, xf: Tensor, yf: Tensor, xr: Tensor, yr: Tensor) -> Tensor:
        twin = self.teacher(xf, augmented=augment(xf.cpu(), self.generator).to(xf.device))[0]
        match = 1 - losses.cosine_similarity(self.student(xf)[0], twin)
        retain = losses.am_softmax_loss(self.student(xr)[1], yr, self.s, self.m)
        return match + self.gamma * retain
