"""Gradient orthogonalisation: ascend the forget loss only along directions that do not move the retain loss."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import losses
from .base import UnlearningModule, UnlearnTask


class GradOrth(UnlearningModule):
    """Each step alternates: (1) ascent along g_f − proj_{g_r}(g_f) (benchmark.md §8), (2) a retain AM-softmax descent step
    (`repair`=False skips it). Lightning manual optimisation; gradients are flattened over all parameters."""

    def __init__(self, task: UnlearnTask, lr: float = 0.01, repair: bool = True) -> None:
        super().__init__(task, lr=lr)
        self.repair = repair
        self.automatic_optimization = False

    def _grad(self, loss: Tensor, params: list[Tensor]) -> Tensor:
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).flatten()
                for g, p in zip(grads, params, strict=True)
            ]
        )

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        xf, yf, xr, yr = batch
        opt = self.optimizers()
        params = [p for p in self.parameters() if p.requires_grad]
        retain_loss = losses.am_softmax_loss(self.student(xr)[1], yr, self.s, self.m)
        g_r = self._grad(retain_loss, params)
        g_f = self._grad(losses.am_softmax_loss(self.student(xf)[1], yf, self.s, self.m), params)
        direction = -losses.orthogonal_component(g_f, g_r)  # descend on −forget loss = ascend on it
        opt.zero_grad()
        offset = 0
        for p in params:
            p.grad = direction[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        opt.step()
        if self.repair:
            opt.zero_grad()
            self.manual_backward(losses.am_softmax_loss(self.student(xr)[1], yr, self.s, self.m))
            opt.step()
        return retain_loss.detach()
