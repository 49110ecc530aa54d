"""The base of every unlearning method: a LoRA student over a frozen reference (benchmark.md §5)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, ClassVar

import lightning as L
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import Tensor

from ..data.encoding import image_inputs
from ..errors import ClearConfigError
from . import losses
from .schedules import warmup_linear


class UnlearningModule(L.LightningModule):
    """Student θ = base + LoRA adapter; reference θ₀ = the same network with the adapter disabled.

    No second copy of the weights is kept for LoRA students; a frozen deep copy is made only for
    full-parameter unlearning (`lora=False`), or on request (`reference="copy"`: the authors' approach,
    kept so `make bench-gpu` can measure what the shared reference saves). Subclasses declare the data
    `streams` they need and implement `compute_loss`; the ℓ1 LoRA regulariser is added here for every method.
    """

    streams: ClassVar[tuple[str, ...]] = ("forget",)

    def __init__(
        self,
        model: torch.nn.Module,
        name: str = "",
        lora: bool = True,
        lora_config: dict[str, Any] | None = None,
        l1_lambda: float = 0.0,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        reference: str = "adapter",
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["model", "optimizer", "scheduler"])
        # `optim.optimizer` / `optim.scheduler` partials; the defaults are the paper's (benchmark.md §4)
        self.make_optimizer = optimizer or partial(torch.optim.AdamW, lr=1e-5, weight_decay=0.01)
        self.make_scheduler = scheduler or partial(warmup_linear, warmup_epochs=1.0)
        if l1_lambda and not lora:
            raise ClearConfigError(
                "method.l1_lambda regularises LoRA weights, but method.lora=false",
                "set method.lora=true to use the ℓ1 regulariser, or method.l1_lambda=0",
            )
        if reference not in ("adapter", "copy"):
            raise ClearConfigError(
                f"unknown method.reference '{reference}'",
                "use adapter (θ₀ = the student with its LoRA adapter disabled) or copy (a frozen second copy)",
            )
        copied = not lora or reference == "copy"  # copied before peft wraps (and mutates) the model
        self.reference_model = copy.deepcopy(model).eval().requires_grad_(False) if copied else None
        self.model = get_peft_model(model, LoraConfig(**(lora_config or {}))) if lora else model
        self.model.train()  # from_pretrained returns eval mode; the student trains

    # --- the two networks -------------------------------------------------------------------
    @contextlib.contextmanager
    def _reference(self) -> Iterator[torch.nn.Module]:
        if self.reference_model is not None:
            yield self.reference_model
        else:
            with self.model.disable_adapter():
                yield self.model

    def forward(self, batch: dict[str, Tensor | None], **kwargs: Any) -> Any:
        return self.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            **image_inputs(batch),
            **kwargs,
        )

    @contextlib.contextmanager
    def frozen_reference(self) -> Iterator[torch.nn.Module]:
        """θ₀ in eval mode with no graph, for any forward a method needs (its train mode restored after)."""
        with self._reference() as ref, torch.no_grad():
            was_training = ref.training
            ref.eval()
            try:
                yield ref
            finally:
                ref.train(was_training)

    def reference_forward(self, batch: dict[str, Tensor | None], **kwargs: Any) -> Any:
        """θ₀'s outputs; never trained, never part of the graph."""
        with self.frozen_reference() as ref:
            return ref(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                **image_inputs(batch),
                **kwargs,
            )

    def nll(self, batch: dict[str, Tensor | None]) -> Tensor:
        return losses.nll(self(batch).logits, batch["labels"])

    def reference_kl(self, batch: dict[str, Tensor | None]) -> Tensor:
        """KL(p_θ₀ ‖ p_θ) on answer positions (benchmark.md §5: the reference is the distribution expected under)."""
        return losses.answer_kl(self.reference_forward(batch).logits, self(batch).logits, batch["labels"])

    def log_likelihoods(self, batch: dict[str, Tensor | None]) -> tuple[Tensor, Tensor]:
        """Sequence log p_θ(y|x) and log p_θ₀(y|x) over answer tokens [B] (NPO and DPO ratios)."""
        labels = batch["labels"]
        student = losses.sequence_log_likelihood(self(batch).logits, labels)
        return student, losses.sequence_log_likelihood(self.reference_forward(batch).logits, labels)

    # --- training ---------------------------------------------------------------------------
    def compute_loss(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """The method's objective on one batch of streams; returns (loss, parts to log)."""
        raise NotImplementedError

    def regularised(self, loss: Tensor, parts: dict[str, Tensor]) -> Tensor:
        """loss + λ·Σ‖W_lora‖₁ (benchmark.md §5); manual-optimisation methods must call it themselves."""
        if self.hparams.l1_lambda:
            l1 = losses.lora_l1(self.model)
            parts["l1"] = l1.detach()
            loss = loss + self.hparams.l1_lambda * l1
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss, parts = self.compute_loss(batch)
        loss = self.regularised(loss, parts)
        bs = batch["forget"]["input_ids"].shape[0] if "forget" in batch else None
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log_dict({f"train/{k}": v for k, v in parts.items()}, batch_size=bs)
        return loss

    def configure_optimizers(self) -> dict[str, Any]:
        """The configured optimiser over the trainable parameters, its schedule stepped per optimiser step."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = self.make_optimizer(params)
        total = max(1, int(self.total_optimizer_steps()))
        sched = self.make_scheduler(opt, total_steps=total, epochs=max(1, self.trainer.max_epochs or 1))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def total_optimizer_steps(self) -> int:
        """Length of the LR schedule; methods that step the optimiser themselves override this."""
        return self.trainer.estimated_stepping_batches

    def trainer_accumulation(self, grad_accum: int) -> int:
        """`Trainer(accumulate_grad_batches=...)` for this method: Lightning refuses accumulation with
        manual optimisation, so such methods (SCRUB) accumulate `grad_accum` batches themselves."""
        return grad_accum if self.automatic_optimization else 1

    # --- results ----------------------------------------------------------------------------
    def unlearned_model(self) -> torch.nn.Module:
        """The network to evaluate: the student with its adapter active."""
        return self.model

    def save_student(self, path: str) -> None:
        """Adapter only for LoRA students (safetensors); the full model otherwise."""
        self.model.save_pretrained(path)

    @property
    def is_lora(self) -> bool:
        return isinstance(self.model, PeftModel)
