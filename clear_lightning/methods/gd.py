"""Gradient difference: ascend on forget, descend on retain (benchmark.md §5)."""

from typing import Any, ClassVar

from torch import Tensor

from .base import UnlearningModule


class GradientDifference(UnlearningModule):
    streams: ClassVar[tuple[str, ...]] = ("forget", "retain")

    def __init__(self, *args: Any, retain_weight: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.retain_weight = retain_weight

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        forget, retain = self.nll(batch["forget"]), self.nll(batch["retain"])
        loss = -forget + self.retain_weight * retain  # −NLL(forget) + λ·NLL(retain)
        return loss, {"forget_nll": forget.detach(), "retain_nll": retain.detach()}
