"""Sparsity (Jia et al., "model sparsity can simplify unlearning"): retain fine-tuning with an ℓ1 penalty."""

from __future__ import annotations

from .base import UnlearnTask
from .retain_ft import RetainFT


class Sparsity(RetainFT):
    """RetainFT whose loss adds l1·Σ|w| over the embedding network's weights."""

    def __init__(self, task: UnlearnTask, lr: float = 0.01, l1: float = 5e-4) -> None:
        super().__init__(task, lr=lr, l1=l1)
