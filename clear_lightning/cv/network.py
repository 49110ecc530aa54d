"""The embedding network: a `transformers` ResNet (ResNet-18 shape for real runs) with a cosine class head."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from transformers import ResNetConfig, ResNetModel

_MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics, which a from_pretrained ResNet expects
_STD = (0.229, 0.224, 0.225)


class EmbeddingNet(nn.Module):
    """Images in [0, 1] → embeddings (benchmark.md §8: ResNet-18, 512-d, classifier head replaced).

    `embedding_dim` adds a linear projection after pooling; None keeps the pooled width (512 for ResNet-18).
    """

    def __init__(
        self,
        name: str = "resnet",
        resnet: dict[str, Any] | None = None,
        embedding_dim: int | None = None,
        from_pretrained: str | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        if from_pretrained:
            self.backbone = ResNetModel.from_pretrained(from_pretrained)
        else:
            plain = OmegaConf.to_container(resnet) if isinstance(resnet, DictConfig) else dict(resnet or {})
            self.backbone = ResNetModel(ResNetConfig(**plain))
        width = self.backbone.config.hidden_sizes[-1]
        self.project = nn.Linear(width, embedding_dim) if embedding_dim else nn.Identity()
        self.dim = embedding_dim or width
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        pooled = self.backbone(pixel_values=(images - self.mean) / self.std).pooler_output
        return self.project(pooled.flatten(1))


class CosineHead(nn.Module):
    """One weight vector per training identity; the AM-softmax compares embeddings with them by cosine."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, dim) * 0.01)

    def cosines(self, embeddings: Tensor) -> Tensor:
        return nn.functional.normalize(embeddings, dim=-1) @ nn.functional.normalize(self.weight, dim=-1).T
