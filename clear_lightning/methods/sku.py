"""SKU: learn the forget knowledge as a task vector Δ, then negate it: θ = θ₀ − α·Δ (benchmark.md §5)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from .base import UnlearningModule


class SelectiveKnowledgeNegation(UnlearningModule):
    """Stage 1 (fit): descend NLL(forget) so the adapter holds Δ, the "harmful" knowledge; optionally
    − λ·KL(p_θ₀ ‖ p_θ) on retain (SKU's preservation divergence, off by default). Stage 2 (end of fit):
    negate Δ in place, which the authors' code never did (benchmark.md §9): a LoRA delta is scaling·B·A, so B ← −α·B
    gives θ₀ − α·Δ; a full-parameter student becomes θ₀ − α·(θ − θ₀). The saved adapter is the negated one.
    """

    streams: ClassVar[tuple[str, ...]] = ("forget", "retain")

    def __init__(
        self, *args: Any, negation_scale: float = 1.0, divergence_weight: float = 0.0, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        if negation_scale <= 0:
            raise ValueError("sku negation_scale must be > 0 (the unlearned model is θ₀ − α·Δ)")
        self.negation_scale, self.divergence_weight = negation_scale, divergence_weight
        self.register_buffer("negated", torch.tensor(False))

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        forget = self.nll(batch["forget"])  # stage 1: NLL(forget) descent, the adapter learns Δ
        if not self.divergence_weight:
            return forget, {"forget_nll": forget.detach()}
        kl = self.reference_kl(batch["retain"])  # KL(p_θ₀ ‖ p_θ) on retain answers, maximised
        return forget - self.divergence_weight * kl, {"forget_nll": forget.detach(), "retain_kl": kl.detach()}

    @torch.no_grad()
    def _scale_task_vector(self, factor: float) -> None:
        """Δ ← factor·Δ."""
        if self.is_lora:
            for name, p in self.model.named_parameters():
                if "lora_B" in name or "lora_embedding_B" in name:
                    p.mul_(factor)
        else:
            for p, p0 in zip(self.model.parameters(), self.reference_model.parameters(), strict=True):
                p.copy_(p0 + factor * (p - p0))

    def on_train_start(self) -> None:
        if self.negated:  # fitting again: continue from the learned Δ, not its negation
            self._scale_task_vector(-1.0 / self.negation_scale)
            self.negated.fill_(False)

    def on_train_end(self) -> None:
        if not self.negated:
            self._scale_task_vector(-self.negation_scale)  # stage 2: θ₀ + Δ → θ₀ − α·Δ
            self.negated.fill_(True)
