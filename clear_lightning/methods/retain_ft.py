"""Retain fine-tuning: keep training on the retain set and hope the forget set fades (benchmark.md §5)."""

from typing import Any, ClassVar

from torch import Tensor

from .base import UnlearningModule


class RetainFineTune(UnlearningModule):
    streams: ClassVar[tuple[str, ...]] = ("forget", "retain")  # forget only anchors the epoch length

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        retain = self.nll(batch["retain"])  # NLL(retain)
        return retain, {"retain_nll": retain.detach()}
