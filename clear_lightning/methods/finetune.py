"""Supervised fine-tuning that builds the original, gold and (tiny) pre-trained base models (benchmark.md §4)."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from peft import LoraConfig, get_peft_model
from torch import Tensor

from ..data.encoding import image_inputs
from . import losses


class FineTuneModule(L.LightningModule):
    """NLL on answer tokens; full-parameter, or LoRA merged into the weights after training (paper)."""

    def __init__(
        self,
        model: torch.nn.Module,
        lr: float,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.03,
        schedule: str = "cosine",
        lora_config: dict[str, Any] | None = None,
    ):
        super().__init__()
        if schedule not in ("cosine", "linear", "constant"):
            raise ValueError(f"unknown schedule '{schedule}': use cosine, linear or constant")
        self.save_hyperparameters(ignore=["model"])
        self.model = get_peft_model(model, LoraConfig(**lora_config)) if lora_config else model
        self.model.train()  # from_pretrained returns eval mode

    def training_step(self, batch: dict[str, Tensor | None], batch_idx: int) -> Tensor:
        out = self.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            **image_inputs(batch),
        )
        loss = losses.nll(out.logits, batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(total * self.hparams.warmup_ratio)
        kind = self.hparams.schedule

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            progress = (step - warmup) / max(1, total - warmup)
            if kind == "cosine":
                return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
            return 1.0 - progress if kind == "linear" else 1.0

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def trained_model(self) -> torch.nn.Module:
        """The plain model to save: LoRA is merged so downstream stages load one checkpoint."""
        return self.model.merge_and_unload() if self.hparams.lora_config else self.model
