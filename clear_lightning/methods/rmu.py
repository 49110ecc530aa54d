"""RMU (Li et al.): steer forget activations at one layer to a random direction, keep retain ones (SPEC §5)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from . import losses
from .base import UnlearningModule


class RepresentationMisdirection(UnlearningModule):
    """‖h_ℓ(forget) − c·u‖² + α‖h_ℓ(retain) − h_ℓ⁰(retain)‖².

    Layer index: `layer` indexes transformers' `hidden_states` of the language model, where 0 is the
    embedding output and ℓ ≥ 1 the output of decoder layer ℓ (1-based, = `layers[ℓ-1]`; Li et al.'s
    `layer_id=7` hook is ℓ=8 here). ℓ = num_layers is the final, normed output.
    Positions: `positions="answer"` (default) averages over the positions that predict answer tokens (the
    ones NLL and KL score): on LLaVA, the ~576 image tokens of a caption row would otherwise swamp the
    answer and the loss would mostly move image activations; "all" = every non-pad position (the paper's
    1/|x|·Σ_{t∈x}).
    u is drawn once per run: uniform [0,1) entries (Li et al.), normalised, from a generator seeded with
    `seed`, and stored as a buffer. c = `steering_coeff` (paper: 300 for LLaVA-7B), or "auto": `auto_scale`
    × the mean ‖h_ℓ⁰‖ of the reference over the first forget batch, so small models get a comparable push.
    """

    streams: ClassVar[tuple[str, ...]] = ("forget", "retain")

    def __init__(
        self,
        model: torch.nn.Module,
        *args: Any,
        layer: int = 7,
        steering_coeff: float | str = "auto",
        auto_scale: float = 5.0,
        alpha: float = 100.0,
        positions: str = "answer",
        seed: int = 0,
        **kwargs: Any,
    ):
        text_config = model.config.get_text_config()
        if not 1 <= layer <= text_config.num_hidden_layers:
            raise ValueError(f"rmu layer {layer} outside 1..{text_config.num_hidden_layers} (decoder layers)")
        if positions not in ("answer", "all"):
            raise ValueError(f"rmu positions '{positions}': use answer or all")
        if steering_coeff != "auto" and not isinstance(steering_coeff, int | float):
            raise ValueError(f"rmu steering_coeff '{steering_coeff}': use a number or auto")
        super().__init__(model, *args, **kwargs)
        self.layer, self.alpha, self.positions, self.auto_scale = layer, alpha, positions, auto_scale
        u = torch.rand(text_config.hidden_size, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("direction", u / u.norm())
        coeff = float("nan") if steering_coeff == "auto" else float(steering_coeff)
        self.register_buffer("steering_coeff", torch.tensor(coeff))

    def _mask(self, batch: dict[str, Any]) -> Tensor:
        if self.positions == "answer":
            return losses.prediction_mask(batch["labels"])
        return batch["attention_mask"].bool()

    def hidden(self, batch: dict[str, Any], reference: bool = False) -> Tensor:
        forward = self.reference_forward if reference else self
        return forward(batch, output_hidden_states=True).hidden_states[self.layer]

    @torch.no_grad()
    def _calibrate(self, forget: dict[str, Any]) -> None:
        """c = auto_scale × mean ‖h_ℓ⁰‖ over the first forget batch's positions."""
        norms = self.hidden(forget, reference=True).float().norm(dim=-1)
        mask = self._mask(forget)
        self.steering_coeff.fill_(self.auto_scale * float((norms * mask).sum() / mask.sum().clamp_min(1)))

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        forget, retain = batch["forget"], batch["retain"]
        if torch.isnan(self.steering_coeff):
            self._calibrate(forget)
        loss, f, r = losses.rmu_loss(
            self.hidden(forget),
            self.steering_coeff * self.direction,  # c·u
            self._mask(forget),
            self.hidden(retain),
            self.hidden(retain, reference=True),
            self._mask(retain),
            self.alpha,
        )
        return loss, {"forget_distance": f.detach(), "retain_distance": r.detach()}
