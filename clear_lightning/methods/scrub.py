"""SCRUB (Kurmanji et al.): the student alternates disobeying the teacher on forget and obeying it on retain."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from torch import Tensor

from . import losses
from .base import UnlearningModule


class SCRUB(UnlearningModule):
    """Teacher θ₀ (adapter disabled), student θ; Lightning manual optimisation (benchmark.md §5).

    max-step: −KL(p_θ₀ ‖ p_θ) on forget; min-step: α·KL(p_θ₀ ‖ p_θ) + γ·NLL on retain (KL on answer
    tokens only). Phases cycle over optimiser steps, across epochs: `max_steps_per_cycle` max-steps, then
    `min_steps_per_cycle` min-steps; from epoch `max_epochs_active` on, only min-steps run (Kurmanji et al.
    end with min-steps that repair the retain set). Each batch feeds exactly one phase and `grad_accum`
    consecutive batches make one optimiser step (Lightning refuses its own accumulation here; the epoch's
    last batch always steps). Step accounting: `global_step` counts every `optimizer.step()`, max and min
    alike, so global_step = steps_done["max"] + steps_done["min"] = epochs × ⌈batches/epoch ÷ grad_accum⌉,
    which is also the length of the LR schedule (stepped here, once per optimiser step).
    """

    streams: ClassVar[tuple[str, ...]] = ("forget", "retain")

    def __init__(
        self,
        *args: Any,
        alpha: float = 1.0,
        gamma: float = 1.0,
        max_steps_per_cycle: int = 1,
        min_steps_per_cycle: int = 1,
        max_epochs_active: int | None = None,
        grad_accum: int = 1,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.cycle = (max_steps_per_cycle, min_steps_per_cycle)
        if min(self.cycle) < 0 or sum(self.cycle) == 0:
            raise ValueError("SCRUB needs max_steps_per_cycle, min_steps_per_cycle >= 0, not both 0")
        self.automatic_optimization = False
        self.alpha, self.gamma, self.grad_accum = alpha, gamma, max(1, int(grad_accum))
        self.max_epochs_active = max_epochs_active
        self.steps_done = {"max": 0, "min": 0}
        self._pending = 0  # batches accumulated into the coming optimiser step

    def phase(self, step: int, epoch: int) -> str:
        """The phase, max or min, of optimiser step `step` (counted over the whole run) in epoch `epoch`."""
        if self.max_epochs_active is not None and epoch >= self.max_epochs_active:
            return "min"
        return "max" if step % sum(self.cycle) < self.cycle[0] else "min"

    def current_phase(self) -> str:
        return self.phase(sum(self.steps_done.values()), self.current_epoch)

    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        if self.current_phase() == "max":
            kl = self.reference_kl(batch["forget"])
            return -kl, {"forget_kl": kl.detach()}  # max-step: −KL(p_θ₀ ‖ p_θ) on forget
        retain = batch["retain"]
        logits = self(retain).logits
        kl = losses.answer_kl(self.reference_forward(retain).logits, logits, retain["labels"])
        nll = losses.nll(logits, retain["labels"])
        loss = self.alpha * kl + self.gamma * nll  # min-step: α·KL(p_θ₀ ‖ p_θ) + γ·NLL on retain
        return loss, {"retain_kl": kl.detach(), "retain_nll": nll.detach()}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        phase = self.current_phase()
        loss, parts = self.compute_loss(batch)
        loss = self.regularised(loss, parts)  # ℓ1 applies in both phases
        self.manual_backward(loss / self.grad_accum)
        self._pending += 1
        if self._pending == self.grad_accum or self.trainer.is_last_batch:
            opt = self.optimizers()
            opt.step()
            opt.zero_grad()
            self.lr_schedulers().step()
            self.steps_done[phase] += 1
            self._pending = 0
        bs = batch["forget"]["input_ids"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log_dict({f"train/{k}": v for k, v in parts.items()}, batch_size=bs)
        self.log("train/max_phase", float(phase == "max"), batch_size=bs)
        return loss.detach()

    def total_optimizer_steps(self) -> int:
        epochs = max(1, self.trainer.max_epochs or 1)
        per_epoch = math.ceil(self.trainer.estimated_stepping_batches / epochs)
        return epochs * math.ceil(per_epoch / self.grad_accum)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["scrub_steps_done"] = dict(self.steps_done)  # the phase cycle resumes where it stopped

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.steps_done = dict(checkpoint.get("scrub_steps_done", self.steps_done))
