"""Gradient ascent on the forget set (benchmark.md §5)."""

from typing import Any

from torch import Tensor

from .base import UnlearningModule


class GradientAscent(UnlearningModule):
    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        forget = self.nll(batch["forget"])
        return -forget, {"forget_nll": forget.detach()}  # −NLL(forget)
