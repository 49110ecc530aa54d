"""Negative preference optimisation on whole-sequence likelihoods, with an optional retain term (benchmark.md §5)."""

from typing import Any, ClassVar

from torch import Tensor

from . import losses
from .base import UnlearningModule


class NegativePreference(UnlearningModule):
    """(2/β)·E_forget[log(1 + (p_θ(y|x)/p_θ₀(y|x))^β)]: the ratio is of sequence likelihoods over answer
    tokens, not the per-vocabulary ratio without labels of the authors' code (benchmark.md §9)."""

    def __init__(self, *args: Any, beta: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.beta = beta

    def npo(self, batch: dict[str, Any]) -> Tensor:
        return losses.npo_loss(*self.log_likelihoods(batch["forget"]), self.beta)

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        npo = self.npo(batch)
        return npo, {"npo": npo.detach()}


class NegativePreferenceRetain(NegativePreference):
    """NPO + λ·NLL(retain) (the `npo_retain` variant)."""

    streams: ClassVar[tuple[str, ...]] = ("forget", "retain")

    def __init__(self, *args: Any, retain_weight: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.retain_weight = retain_weight

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        npo, retain = self.npo(batch), self.nll(batch["retain"])
        loss = npo + self.retain_weight * retain  # L_NPO + λ·NLL(retain)
        return loss, {"npo": npo.detach(), "retain_nll": retain.detach()}
