"""RMU (Li et al.): steer forget activations at one layer to a random direction, keep retain ones (benchmark.md §5)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from ..data.encoding import IGNORE_INDEX
from . import losses
from .base import UnlearningModule

POSITIONS = ("answer", "predict", "all")


def position_mask(labels: Tensor, attention_mask: Tensor, positions: str = "answer") -> Tensor:
    """[B, T] the positions whose activations RMU moves.

    answer: the answer tokens' own positions (labels ≠ -100), as Li et al. and OpenUnlearning;
    predict: the positions that predict the answer tokens (one to the left, the ones NLL and KL score);
    all: every non-pad position (the paper's 1/|x|·Σ_{t∈x}).
    """
    if positions == "answer":
        return labels != IGNORE_INDEX
    if positions == "predict":
        return losses.prediction_mask(labels)
    if positions == "all":
        return attention_mask.bool()
    raise ValueError(f"rmu positions '{positions}': use one of {', '.join(POSITIONS)}")


class RepresentationMisdirection(UnlearningModule):
    """‖h_ℓ(forget) − c·u‖² + α‖h_ℓ(retain) − h_ℓ⁰(retain)‖².

    Layer: `layer` is a 0-based decoder layer index and h_ℓ the output of `layers[layer]`, as the CLEAR
    authors' `model.layers[7]` hook and Li et al.'s `layer_id=7` (= transformers' `hidden_states[layer + 1]`
    for every layer but the last, whose `hidden_states` entry is the final-normed output). It is captured
    with a forward hook on the language model's `get_decoder().layers[layer]`, so no module path is
    hard-coded and no other layer's activations are kept.
    Reduction: "mean" (default) averages the squared error over the hidden size, as Li et al.'s
    `F.mse_loss` and OpenUnlearning; "sum" (the earlier behaviour) is d× larger, which makes any added term
    (the ℓ1 regulariser) d× weaker. Either way c is the target's norm and α the retain/forget ratio:
    neither changes meaning, only the loss scale does.
    Positions (see `position_mask`): "answer" (default) averages over the answer tokens' own positions,
    as Li et al./OpenUnlearning; on LLaVA the ~576 image tokens of a caption row would otherwise swamp the
    answer. Over positions the loss is a token mean over the batch.
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
        reduction: str = "mean",
        seed: int = 0,
        **kwargs: Any,
    ):
        text_config = model.config.get_text_config()
        last = text_config.num_hidden_layers - 1
        if not 0 <= layer <= last:
            raise ValueError(
                f"rmu layer {layer} outside 0..{last}: a 0-based decoder layer index (the authors' layers[7] is 7)"
            )
        if positions not in POSITIONS:
            raise ValueError(f"rmu positions '{positions}': use one of {', '.join(POSITIONS)}")
        if reduction not in losses.RMU_REDUCTIONS:
            raise ValueError(f"rmu reduction '{reduction}': use mean (Li et al.) or sum")
        if steering_coeff != "auto" and not isinstance(steering_coeff, int | float):
            raise ValueError(f"rmu steering_coeff '{steering_coeff}': use a number or auto")
        super().__init__(model, *args, **kwargs)
        self.layer, self.alpha, self.positions, self.auto_scale = layer, alpha, positions, auto_scale
        self.reduction = reduction
        u = torch.rand(text_config.hidden_size, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("direction", u / u.norm())
        coeff = float("nan") if steering_coeff == "auto" else float(steering_coeff)
        self.register_buffer("steering_coeff", torch.tensor(coeff))

    def _mask(self, batch: dict[str, Any]) -> Tensor:
        return position_mask(batch["labels"], batch["attention_mask"], self.positions)

    def hidden(self, batch: dict[str, Any], reference: bool = False) -> Tensor:
        """The output of decoder layer `layer` (0-based), captured by a forward hook during the forward."""
        captured: list[Tensor] = []

        def keep(module: torch.nn.Module, args: Any, output: Any) -> None:
            captured.append(output[0] if isinstance(output, tuple) else output)

        handle = self.model.get_decoder().layers[self.layer].register_forward_hook(keep)
        try:
            (self.reference_forward if reference else self)(batch)
        finally:
            handle.remove()
        return captured[0]

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
            self.reduction,
        )
        return loss, {"forget_distance": f.detach(), "retain_distance": r.detach()}
