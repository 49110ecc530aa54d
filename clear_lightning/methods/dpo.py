"""DPO unlearning: prefer an IDK answer (chosen) over the forget answer (rejected) (benchmark.md §5)."""

from typing import Any, ClassVar

from torch import Tensor

from ..evaluation import shared_prefix as sp
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
        shared_prefix: bool = True,
        **kwargs: Any,
    ):
        if scale not in losses.DPO_SCALES:
            raise ValueError(f"dpo scale '{scale}': use paper (−log σ(β·m)) or openunlearning ((2/β)·that)")
        super().__init__(*args, **kwargs)
        self.beta, self.dpo_weight, self.idk_weight, self.scale = beta, dpo_weight, idk_weight, scale
        # the rejected (forget) and chosen (IDK) rows ask the same prompt: one prefix pass scores both
        self.shared_prefix = bool(shared_prefix) and sp.supports(self.model)

    @property
    def prompt_pair(self) -> tuple[str, str] | None:
        """The streams the data module lays out as shared-prefix pairs (None: separate rows)."""
        return ("forget", "idk") if self.shared_prefix else None

    def _pair_terms(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """chosen, chosen_ref, rejected, rejected_ref log-likelihoods and NLL(idk), from one prefix pass per
        network (student; reference with the adapter disabled) — equal to the separate rows' (tested)."""
        pair = batch["pair"]
        items = sp.pair_items(pair)
        logits, labels = sp.candidate_logits(self.model, pair, items)
        with self.frozen_reference() as ref:
            ref_logits, _ = sp.candidate_logits(ref, pair, items)
        ll, ll_ref = (
            losses.sequence_log_likelihood(logits, labels),
            losses.sequence_log_likelihood(ref_logits, labels),
        )
        idk_nll = losses.nll(logits[1::2], labels[1::2])
        return ll[1::2], ll_ref[1::2], ll[0::2], ll_ref[0::2], idk_nll

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        if "pair" in batch and self.shared_prefix:
            chosen, chosen_ref, rejected, rejected_ref, idk_nll = self._pair_terms(batch)
        else:
            idk, forget = batch["idk"], batch["forget"]
            idk_logits = self(idk).logits  # one student pass serves both the DPO ratio and NLL(idk)
            chosen = losses.sequence_log_likelihood(idk_logits, idk["labels"])
            chosen_ref = losses.sequence_log_likelihood(self.reference_forward(idk).logits, idk["labels"])
            rejected, rejected_ref = self.log_likelihoods(forget)
            idk_nll = losses.nll(idk_logits, idk["labels"])
        dpo = losses.dpo_loss(chosen, chosen_ref, rejected, rejected_ref, self.beta, self.scale)
        loss = self.dpo_weight * dpo + self.idk_weight * idk_nll  # benchmark.md §5: L_DPO + NLL(IDK), λ₁=λ₂=1
        return loss, {"dpo": dpo.detach(), "idk_nll": idk_nll.detach()}
