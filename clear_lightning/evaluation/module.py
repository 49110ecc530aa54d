"""`trainer.test` over one loader per evaluation set, producing per-item records (benchmark.md §6)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from torch import Tensor

from ..data.encoding import image_inputs
from ..methods import losses
from ..metrics.functional import rouge_l_recall, score_record
from ..metrics.items import ItemResults
from . import shared_prefix

GENERATION_MODES = ("image", "text_only_legacy")


class Evaluator(L.LightningModule):
    """Scores a model without training it: losses of answer/paraphrase/perturbations and a greedy
    generation; numeric results sync across ranks and de-duplicate by item index.

    `generation="image"` (paper mode) continues the exact prompt ids with the image inputs;
    `"text_only_legacy"` reproduces the authors' evaluator (mm/eval.py `get_all_evals`): the prompt is decoded to
    text without special tokens (so without the image placeholder), re-tokenised with the tokenizer's special
    tokens and generated from without any image input.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        set_names: Sequence[str],
        max_new_tokens: int = 32,
        truth_ratio_mean: str = "arithmetic",
        generation: str = "image",
    ):
        if generation not in GENERATION_MODES:
            raise ValueError(f"eval.generation '{generation}': use one of {', '.join(GENERATION_MODES)}")
        super().__init__()
        self.generation = generation
        self.model, self.tokenizer = model, tokenizer
        self.set_names = list(set_names)
        self.max_new_tokens, self.truth_ratio_mean = max_new_tokens, truth_ratio_mean
        self.items = torch.nn.ModuleDict({name: ItemResults() for name in self.set_names})
        self._texts: dict[str, list[tuple[int, Any, str]]] = {name: [] for name in self.set_names}
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.seconds = {"score": 0.0, "generate": 0.0}

    def transfer_batch_to_device(
        self, batch: dict[str, Any], device: torch.device, dataloader_idx: int
    ) -> Any:
        """Move tensors only: the batch also carries the items themselves (text, PIL images)."""
        examples = batch.pop("examples")
        moved = super().transfer_batch_to_device(batch, device, dataloader_idx)
        moved["examples"] = examples
        return moved

    def _forward(self, batch: dict[str, Tensor | None]) -> Tensor:
        return self.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            **image_inputs(batch),
        ).logits

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        name = self.set_names[dataloader_idx]
        t0 = time.perf_counter()
        score = batch["score"]
        if "prefix" in score:  # shared-prefix layout: the image and prompt run once per item
            row_loss = shared_prefix.sequence_nll(self.model, score, batch["row_item"])
        else:
            row_loss = losses.sequence_nll(self._forward(score), score["labels"])
        loss, para, perturbed = _per_item(
            row_loss, batch["row_item"], batch["row_role"], len(batch["examples"])
        )
        t1 = time.perf_counter()
        generations = self.generate(batch["generate"])
        self.seconds["score"] += t1 - t0
        self.seconds["generate"] += time.perf_counter() - t1
        rouge = [rouge_l_recall(g, ex.answer) for g, ex in zip(generations, batch["examples"], strict=True)]
        self.items[name].update(
            batch["index"], loss, para, perturbed, torch.tensor(rouge, device=loss.device)
        )
        # the exact (float64) ROUGE-L rides with the texts, so the record does not compute it a second time
        self._texts[name] += list(
            zip(batch["index"].tolist(), batch["examples"], generations, rouge, strict=True)
        )

    @torch.no_grad()
    def generate(self, prompts: dict[str, Tensor | None]) -> list[str]:
        """Greedy decoding continuing the exact prompt ids used in training, with the image inputs."""
        if self.generation == "text_only_legacy":
            prompts = self._text_only_prompts(prompts)
        out = self.model.generate(
            input_ids=prompts["input_ids"],
            attention_mask=prompts["attention_mask"],
            **image_inputs(prompts),  # none for text-only batches: LLaVA's generate refuses pixel_values=None
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        new = out[:, prompts["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    def _text_only_prompts(self, prompts: dict[str, Tensor | None]) -> dict[str, Tensor | None]:
        """The authors' round trip: decode (dropping special tokens, hence the image), re-encode, left-pad."""
        ids, mask = prompts["input_ids"], prompts["attention_mask"]
        texts = [
            self.tokenizer.decode(row[m.bool()], skip_special_tokens=True)
            for row, m in zip(ids, mask, strict=True)
        ]
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            enc = self.tokenizer(texts, add_special_tokens=True, padding=True, return_tensors="pt")
        finally:
            self.tokenizer.padding_side = side
        return {
            "input_ids": enc["input_ids"].to(ids.device),
            "attention_mask": enc["attention_mask"].to(ids.device),
        }

    def on_test_epoch_end(self) -> None:
        for name in self.set_names:
            rows = self.items[name].to_rows()
            texts = _gather_objects(self._texts[name])
            by_index = {i: (ex, gen, rouge) for i, ex, gen, rouge in texts}
            self.records[name] = [
                _record(row, *by_index[row["index"]], self.truth_ratio_mean) for row in rows
            ]
            self.items[name].reset()
            self._texts[name] = []


def _per_item(row_loss: Tensor, row_item: Tensor, row_role: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """Scatter candidate-row losses back to items: answer, paraphrase (= answer if none), perturbed [n, K]."""
    loss = torch.full((n,), math.nan, device=row_loss.device)
    loss[row_item[row_role == 0]] = row_loss[row_role == 0]
    para = loss.clone()
    para[row_item[row_role == 1]] = row_loss[row_role == 1]
    counts = torch.bincount(row_item[row_role == 2], minlength=n)
    k = int(counts.max()) if counts.numel() else 0
    perturbed = torch.full((n, max(k, 1)), math.nan, device=row_loss.device)
    slot = torch.zeros(n, dtype=torch.long)
    for r in (row_role == 2).nonzero().flatten().tolist():
        i = int(row_item[r])
        perturbed[i, slot[i]] = row_loss[r]
        slot[i] += 1
    return loss, para, perturbed


def _gather_objects(items: list[Any]) -> list[Any]:
    """Strings cannot ride torchmetrics' tensor sync: gather them as objects when distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return items
    parts: list[list[Any]] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(parts, items)
    return [x for p in parts for x in p]


def _record(
    row: dict[str, Any], example: Any, generation: str, rouge: float, truth_ratio_mean: str
) -> dict[str, Any]:
    record = {
        "id": example.id,
        "index": row["index"],
        "set": example.set,
        "modality": example.modality,
        "kind": example.kind,
        "person": example.person,  # the unit of a person-level bootstrap (Example.person)
        "question": example.question,
        "answer": example.answer,
        "generation": generation,
        "loss": row["loss"],
        "loss_paraphrased": row["loss_paraphrased"],
        "losses_perturbed": row["losses_perturbed"],
        "rougeL_recall": rouge,
    }
    if example.kind in ("face_name", "multiple_choice"):
        record["answer_in_options"] = example.answer_listed  # reference_compat scores it as one more option
    return score_record(record, truth_ratio_mean=truth_ratio_mean)
