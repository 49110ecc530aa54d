"""SCRUB (Kurmanji et al.): alternate a max-step (disobey the teacher on forget) and a min-step (obey on retain)."""

from __future__ import annotations

from torch import Tensor

from .. import losses
from .base import UnlearningModule, UnlearnTask


class SCRUB(UnlearningModule):
    """max: −KL(p₀ ‖ p) on forget; min: α·KL(p₀ ‖ p) + γ·AM-softmax on retain. Max-steps run only in the first
    `max_epochs` epochs (the last epochs repair retain); Lightning manual optimisation, one step per phase."""

    def __init__(
        self, task: UnlearnTask, lr: float = 0.01, alpha: float = 1.0, gamma: float = 1.0, max_epochs: int = 2
    ) -> None:
        super().__init__(task, lr=lr)
        self.alpha, self.gamma, self.max_epochs = alpha, gamma, max_epochs
        self.automatic_optimization = False

    def _kl(self, x: Tensor) -> tuple[Tensor, Tensor]:
        cos = self.student(x)[1]
        kl = losses.kl_teacher_student(
            losses.class_log_probs(self.teacher(x)[1], self.s), losses.class_log_probs(cos, self.s)
        )
        return kl, cos

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        xf, _, xr, yr = batch
        opt = self.optimizers()
        if self.current_epoch < self.max_epochs:
            opt.zero_grad()
            self.manual_backward(-self._kl(xf)[0])
            opt.step()
        kl, cos = self._kl(xr)
        loss = self.alpha * kl + self.gamma * losses.am_softmax_loss(cos, yr, self.s, self.m)
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        return loss.detach()
