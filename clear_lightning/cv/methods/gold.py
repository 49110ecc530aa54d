"""Gold: retrain from the pre-trained base on the retain persons only — what unlearning should imitate."""

from __future__ import annotations

from ..network import CosineHead
from ..training import IdentificationModule
from .base import UnlearnTask


class Gold(IdentificationModule):
    """A fresh head over the retain persons, the fine-tuning recipe; the forget persons are never seen."""

    def __init__(self, task: UnlearnTask) -> None:
        net = task.base()
        super().__init__(net, CosineHead(net.dim, int(task.retain.labels.max()) + 1), task.recipe)
