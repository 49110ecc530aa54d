"""What every CV method gets (an UnlearnTask) and the shared student/teacher module."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import lightning.pytorch as pl
import torch
from torch import Tensor

from ..data import FaceSet, to_float
from ..network import CosineHead, EmbeddingNet
from ..training import Recipe


@dataclass
class UnlearnTask:
    """One model to unlearn: the original (net + head over its training persons) and its forget/retain rows.

    Labels in `forget` and `retain` are the head's class slots. `base` builds a fresh copy of the pre-trained
    network (for Gold, which retrains from it with the fine-tuning `recipe`).
    """

    original: EmbeddingNet
    head: CosineHead
    forget: FaceSet
    retain: FaceSet
    base: Callable[[], EmbeddingNet]
    recipe: Recipe
    seed: int


class UnlearningModule(pl.LightningModule):
    """Student = a trainable copy of the original; teacher = a frozen copy (full-parameter: the net is small)."""

    streams: tuple[str, ...] = ("forget", "retain")

    def __init__(self, task: UnlearnTask, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__()
        self.net, self.head = copy.deepcopy(task.original), copy.deepcopy(task.head)
        self.teacher_net = copy.deepcopy(task.original).eval().requires_grad_(False)
        self.teacher_head = copy.deepcopy(task.head).requires_grad_(False)
        self.s, self.m = task.recipe.s, task.recipe.m
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay

    def student(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(embeddings, cosines to the head's identities) of the model being unlearned."""
        emb = self.net(to_float(x))
        return emb, self.head.cosines(emb)

    @torch.no_grad()
    def teacher(self, x: Tensor, augmented: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The original model's (embeddings, cosines); eval mode so its batch-norm statistics stay put."""
        self.teacher_net.eval()
        emb = self.teacher_net(to_float(x if augmented is None else augmented))
        return emb, self.teacher_head.cosines(emb)

    def loss(self, xf: Tensor, yf: Tensor, xr: Tensor, yr: Tensor) -> Tensor:
        raise NotImplementedError

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        loss = self.loss(*batch)
        self.log("loss", loss, prog_bar=False, batch_size=len(batch[0]))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = list(self.net.parameters()) + list(self.head.parameters())
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
