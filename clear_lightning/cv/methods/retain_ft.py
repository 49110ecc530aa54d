"""RetainFT: keep fine-tuning the original on retain only and hope the forget persons fade."""

from __future__ import annotations

import copy
from dataclasses import replace

from ..training import IdentificationModule
from .base import UnlearnTask


class RetainFT(IdentificationModule):
    """AM-softmax on retain from the original weights (head keeps the forget identities as negatives)."""

    def __init__(self, task: UnlearnTask, lr: float = 0.01, l1: float = 0.0) -> None:
        recipe = replace(task.recipe, lr=lr)
        super().__init__(copy.deepcopy(task.original), copy.deepcopy(task.head), recipe, l1=l1)
