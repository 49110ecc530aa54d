"""KL minimisation: ascend on forget, stay close to the reference on retain (benchmark.md §5)."""

from typing import Any, ClassVar

from torch import Tensor

from .base import UnlearningModule


class KLMinimisation(UnlearningModule):
    streams: ClassVar[tuple[str, ...]] = ("forget", "retain")

    def __init__(self, *args: Any, retain_weight: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.retain_weight = retain_weight

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        forget = self.nll(batch["forget"])
        kl = self.reference_kl(batch["retain"])  # KL(p_θ₀ ‖ p_θ), answer tokens only (benchmark.md §5)
        loss = -forget + self.retain_weight * kl  # −NLL(forget) + λ·KL(p_θ₀ ‖ p_θ)(retain)
        return loss, {"forget_nll": forget.detach(), "retain_kl": kl.detach()}
