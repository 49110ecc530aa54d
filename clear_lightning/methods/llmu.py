"""LLMU (Yao et al.): ascend on forget, fit IDK answers to forget questions, keep retain close (benchmark.md §5)."""

from typing import Any, ClassVar

from torch import Tensor

from .base import UnlearningModule


class LLMU(UnlearningModule):
    """CLEAR's variant: IDK answers in place of Yao et al.'s random answers (the `idk` stream)."""

    streams: ClassVar[tuple[str, ...]] = ("forget", "retain", "idk")

    def __init__(
        self,
        *args: Any,
        forget_weight: float = 1.0,
        idk_weight: float = 1.0,
        retain_weight: float = 1.0,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.forget_weight, self.idk_weight, self.retain_weight = forget_weight, idk_weight, retain_weight

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        forget, idk = self.nll(batch["forget"]), self.nll(batch["idk"])
        kl = self.reference_kl(batch["retain"])  # KL(p_θ₀ ‖ p_θ) on retain answer tokens (benchmark.md §5)
        # benchmark.md §5: −NLL(forget) + NLL(forget questions, IDK answers) + KL(p_θ₀ ‖ p_θ)(retain)
        loss = -self.forget_weight * forget + self.idk_weight * idk + self.retain_weight * kl
        return loss, {"forget_nll": forget.detach(), "idk_nll": idk.detach(), "retain_kl": kl.detach()}
