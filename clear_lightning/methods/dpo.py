"""DPO unlearning: prefer an IDK answer (chosen) over the forget answer (rejected) (benchmark.md §5)."""

from typing import Any, ClassVar

from torch import Tensor

from . import losses
from .base import UnlearningModule


class DirectPreference(UnlearningModule):
    """λ₂·L_DPO + λ₁·NLL(idk). Both terms are kept: the authors' code let the IDK NLL overwrite the DPO
    loss (benchmark.md §9), which made it plain IDK tuning.

    scale: "paper" (default) uses L_DPO = −log σ(β·m) as the paper writes it; "openunlearning" uses
    (2/β)·(−log σ(β·m)) as OpenUnlearning does (20× at β = 0.1), for comparing with its results.
    """

    streams: ClassVar[tuple[str, ...]] = ("forget", "idk")

    def __init__(
        self,
        *args: Any,
        beta: float = 0.1,
        dpo_weight: float = 1.0,
        idk_weight: float = 1.0,
        scale: str = "paper",
        **kwargs: Any,
    ):
        if scale not in losses.DPO_SCALES:
            raise ValueError(f"dpo scale '{scale}': use paper (−log σ(β·m)) or openunlearning ((2/β)·that)")
        super().__init__(*args, **kwargs)
        self.beta, self.dpo_weight, self.idk_weight, self.scale = beta, dpo_weight, idk_weight, scale

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        idk, forget = batch["idk"], batch["forget"]
        idk_logits = self(idk).logits  # one student pass serves both the DPO ratio and NLL(idk)
        chosen = losses.sequence_log_likelihood(idk_logits, idk["labels"])
        chosen_ref = losses.sequence_log_likelihood(self.reference_forward(idk).logits, idk["labels"])
        rejected, rejected_ref = self.log_likelihoods(forget)
        dpo = losses.dpo_loss(chosen, chosen_ref, rejected, rejected_ref, self.beta, self.scale)
        idk_nll = losses.nll(idk_logits, idk["labels"])
        loss = self.dpo_weight * dpo + self.idk_weight * idk_nll  # benchmark.md §5: L_DPO + NLL(IDK), λ₁=λ₂=1
        return loss, {"dpo": dpo.detach(), "idk_nll": idk_nll.detach()}
