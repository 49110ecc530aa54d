"""DPO for identification: prefer a wrong identity over the true one on forget images, keep retain."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import losses
from .base import UnlearningModule, UnlearnTask


class DPO(UnlearningModule):
    """Preferred y_w = a random other identity, rejected y_l = the true one; reference = the original."""

    def __init__(self, task: UnlearnTask, lr: float = 0.01, beta: float = 0.1, gamma: float = 1.0) -> None:
        super().__init__(task, lr=lr)
        self.beta, self.gamma = beta, gamma
        self.generator = torch.Generator().manual_seed(task.seed)

    def loss(self, xf: Tensor, yf: Tensor, xr: Tensor, yr: Tensor) -> Tensor:
        classes = self.head.weight.shape[0]
        shift = torch.randint(1, classes, yf.shape, generator=self.generator).to(yf.device)
        wrong = (yf + shift) % classes  # uniformly one of the other identities
        logp = losses.class_log_probs(self.student(xf)[1], self.s)
        ref = losses.class_log_probs(self.teacher(xf)[1], self.s)

        def pick(t: Tensor, y: Tensor) -> Tensor:
            return t.gather(1, y[:, None]).squeeze(1)

        dpo = losses.dpo_loss(pick(logp, wrong), pick(logp, yf), pick(ref, wrong), pick(ref, yf), self.beta)
        return dpo + self.gamma * losses.am_softmax_loss(self.student(xr)[1], yr, self.s, self.m)
