"""Adapter interpolation: scale the unlearning update by α < 1. If a quarter of the update already leaves the
forget scores near gold, forgetting is deep; if the knowledge is back at α = 0.75, it was a thin layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .base import Attack, AttackContext, Records, Subject


def interpolate(model: torch.nn.Module, anchor: torch.nn.Module, alpha: float) -> torch.nn.Module:
    """In place: every floating weight w ← anchor + α (w − anchor). For a LoRA student merged into the original
    (the anchor) this is exactly the LoRA update scaled by α; α = 0 gives the anchor, α = 1 the model."""
    anchor_state = anchor.state_dict()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not torch.is_floating_point(tensor):
                continue
            if name not in anchor_state or anchor_state[name].shape != tensor.shape:
                raise ValueError(f"cannot interpolate {name}: the anchor model has no weight of that shape")
            # lerp is exact at both ends (α = 0: the anchor's weights, α = 1: the model's), unlike a + α(b − a)
            tensor.copy_(torch.lerp(anchor_state[name].to(tensor.dtype), tensor, alpha))
    return model


class Interpolate(Attack):
    """Evaluate every model moved α of the way from the original to it: M_α = original + α (M − original).
    For the unlearned model that scales its unlearning update; gold is moved the same way, so the reference
    shares the attack (and a model that *is* gold has residual 0 at every α); the original does not move."""

    kind = "interpolate"
    description = "scale the unlearning update by alpha (weights original + alpha * (model - original))"

    def __init__(self, alphas: Sequence[float] = (0.25, 0.5, 0.75)):
        if not alphas or any(not 0.0 <= float(a) <= 1.0 for a in alphas):
            raise ValueError(f"interpolate alphas={list(alphas)}: use values in [0, 1]")
        self.alphas = [float(a) for a in alphas]

    def variants(self) -> list[str]:
        return [f"{a:g}" for a in self.alphas]

    def run(self, ctx: AttackContext, subject: Subject) -> dict[str, Records]:
        out: dict[str, Records] = {}
        if subject.label == "original":  # original + α (original − original) = the original, at every α
            model, processor = subject.load()
            records = ctx.evaluate(model, processor, list(ctx.forget_sets))
            return {v: records for v in self.variants()}
        anchor, _ = ctx.original.load()
        for alpha, variant in zip(self.alphas, self.variants(), strict=True):
            model, processor = subject.load()
            interpolate(model, anchor, alpha)
            ctx.say(f"interpolate: {subject.label} at alpha={variant}")
            out[variant] = ctx.evaluate(model, processor, list(ctx.forget_sets))
            del model
        return out

    def spec(self) -> dict[str, Any]:
        return {"alphas": self.alphas}
