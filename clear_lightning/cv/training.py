"""Identification training with Lightning: pre-training on celebrities, fine-tuning on CLEAR persons."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from . import losses
from .data import FaceSet, to_float
from .network import CosineHead, EmbeddingNet


@dataclass(frozen=True)
class Recipe:
    """SGD identification training (paper appendix E: lr 0.1, 20 epochs, batch 256, weight decay 5e-5)."""

    epochs: int = 20
    lr: float = 0.1
    batch_size: int = 256
    weight_decay: float = 5e-5
    momentum: float = 0.9
    s: float = 30.0
    m: float = 0.4


class IdentificationModule(pl.LightningModule):
    """net + cosine head trained with the AM-softmax; `l1` adds the Sparsity method's ℓ1 term."""

    streams: tuple[str, ...] = ("retain",)

    def __init__(self, net: EmbeddingNet, head: CosineHead, recipe: Recipe, l1: float = 0.0) -> None:
        super().__init__()
        self.net, self.head, self.recipe, self.l1 = net, head, recipe, l1

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = losses.am_softmax_loss(
            self.head.cosines(self.net(to_float(x))), y, self.recipe.s, self.recipe.m
        )
        if self.l1:
            loss = loss + self.l1 * losses.l1_penalty(list(self.net.parameters()))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        r = self.recipe
        return torch.optim.SGD(self.parameters(), lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay)


class PairedFaces(Dataset):
    """One item per forget image, each paired with a retain image drawn by a seeded generator."""

    def __init__(self, forget: FaceSet, retain: FaceSet, seed: int) -> None:
        self.forget, self.retain = forget, retain
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.forget)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        j = int(torch.randint(len(self.retain), (1,), generator=self.generator))
        return self.forget.images[i], self.forget.labels[i], self.retain.images[j], self.retain.labels[j]


def loader(
    streams: tuple[str, ...], forget: FaceSet | None, retain: FaceSet, batch_size: int, seed: int
) -> DataLoader:
    """Retain-only batches (x, y), or forget-anchored pairs (xf, yf, xr, yr): one epoch = one pass over forget."""
    generator = torch.Generator().manual_seed(seed)
    if "forget" in streams:
        if forget is None or len(forget) == 0:
            raise ValueError("this method needs a forget set")
        data: Dataset = PairedFaces(forget, retain, seed)
    else:
        data = TensorDataset(retain.images, retain.labels)
    return DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator)


def trainer_kwargs(device: str) -> dict[str, Any]:
    """Lightning accelerator/devices for "cpu", "cuda" or "cuda:K"."""
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else 0
        return {"accelerator": "gpu", "devices": [index]}
    return {"accelerator": "cpu", "devices": 1}


def fit(module: pl.LightningModule, data: DataLoader, epochs: int, device: str = "cpu") -> None:
    """A quiet Trainer: no logger, checkpoints or progress bar (the shadow loop reports per model)."""
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=False,
        **trainer_kwargs(device),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r".*(does not have many workers|number of training batches|module\(s\) in eval mode).*",
        )
        trainer.fit(module, data)


@torch.no_grad()
def embed(net: EmbeddingNet, faces: FaceSet, batch_size: int = 512, device: str = "cpu") -> Tensor:
    """Embeddings of every image, in row order, in eval mode."""
    was_training = net.training
    net.eval().to(device)
    out = [
        net(to_float(faces.images[i : i + batch_size]).to(device)).cpu()
        for i in range(0, len(faces), batch_size)
    ]
    net.train(was_training)
    return torch.cat(out)
