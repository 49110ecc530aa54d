"""IDK tuning: answer forget questions with "I don't know", keep the retain set (benchmark.md §5)."""

from typing import Any, ClassVar

from torch import Tensor

from .base import UnlearningModule


class IDKTuning(UnlearningModule):
    # forget anchors the epoch; `idk` is each forget question with a random IDK answer
    streams: ClassVar[tuple[str, ...]] = ("forget", "retain", "idk")

    def __init__(self, *args: Any, retain_weight: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.retain_weight = retain_weight

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        idk, retain = self.nll(batch["idk"]), self.nll(batch["retain"])
        loss = idk + self.retain_weight * retain  # NLL(D_idk) + λ·NLL(retain)
        return loss, {"idk_nll": idk.detach(), "retain_nll": retain.detach()}
