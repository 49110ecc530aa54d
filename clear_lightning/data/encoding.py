"""Token ids and answer-only label masks, computed from the processor's own (image-expanded) output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .examples import Example

IGNORE_INDEX = -100
# The processor outputs that describe images: LLaVA gives pixel_values [n_images, 3, H, W]; Qwen2-VL gives
# flattened patches [n_patches, d] plus image_grid_thw [n_images, 3]. Both concatenate along dim 0.
IMAGE_INPUTS = ("pixel_values", "image_grid_thw", "image_sizes")


def image_inputs(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The image tensors of a batch, to pass to the model as keyword arguments (none for text rows)."""
    return {k: batch[k] for k in IMAGE_INPUTS if batch.get(k) is not None}


@dataclass(frozen=True)
class PromptTemplate:
    """A chat layout from the model YAML, e.g. LLaVA-1.5's `USER: <image>\\n{q} ASSISTANT: {a}</s>` (SPEC §3)."""

    template: str = "USER: {image}{question} ASSISTANT:"
    image: str = "<image>\n"
    answer_prefix: str = " "

    def prompt(self, question: str, has_image: bool) -> str:
        return self.template.format(image=self.image if has_image else "", question=question)


class ExampleEncoder:
    """Encodes a prompt once through the processor and appends answer ids, so the mask is exact.

    The prompt goes through the processor (which expands `<image>` into one token per patch); the
    answer is tokenised on its own and followed by EOS. Labels are -100 on every prompt position,
    so neither image nor prompt tokens leak into the loss (SPEC §3).
    """

    def __init__(self, processor: Any, template: PromptTemplate, add_eos: bool = True, cache: bool = False):
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.template = template
        self.add_eos = add_eos
        self._cache: dict[str, dict[str, Any]] | None = {} if cache else None

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def supports_images(self) -> bool:
        return hasattr(self.processor, "image_processor")

    def prompt(self, example: Example) -> dict[str, Any]:
        """`input_ids` (list, image-expanded) and the processor's image tensors (`pixel_values` is None for
        text rows)."""
        if self._cache is not None and example.id in self._cache:
            return self._cache[example.id]
        text = self.template.prompt(example.question, example.image is not None)
        if example.image is not None:
            if not self.supports_images:
                raise ValueError(f"{example.id} has an image but the model's processor is text-only")
            enc = self.processor(text=[text], images=[example.image.convert("RGB")], return_tensors="pt")
            out = {"input_ids": enc["input_ids"][0].tolist(), **{k: enc[k] for k in IMAGE_INPUTS if k in enc}}
        else:
            enc = self.processor(text=[text]) if self.supports_images else self.tokenizer([text])
            out = {"input_ids": list(enc["input_ids"][0]), "pixel_values": None}
        if self._cache is not None:
            self._cache[example.id] = out
        return out

    def answer_ids(self, answer: str) -> list[int]:
        ids = self.tokenizer(self.template.answer_prefix + answer, add_special_tokens=False)["input_ids"]
        return list(ids) + ([self.tokenizer.eos_token_id] if self.add_eos else [])

    def encode(self, example: Example, answer: str | None = None) -> dict[str, Any]:
        """Prompt + answer with labels on the answer tokens only."""
        prompt = self.prompt(example)
        target = self.answer_ids(example.answer if answer is None else answer)
        return {
            **prompt,
            "input_ids": prompt["input_ids"] + target,
            "labels": [IGNORE_INDEX] * len(prompt["input_ids"]) + target,
        }


def pad_batch(rows: list[dict[str, Any]], pad_id: int, side: str = "right") -> dict[str, torch.Tensor | None]:
    """Pad a list of encoded rows; image tensors concatenate over the rows that carry an image.

    LLaVA (and Qwen2-VL) scatter image features by image-token count, so text rows need no dummy image.
    """
    longest = max(len(r["input_ids"]) for r in rows)
    ids, mask, labels = [], [], []
    for r in rows:
        n = longest - len(r["input_ids"])
        pad, ones = [pad_id] * n, [1] * len(r["input_ids"])
        if side == "right":
            ids.append(r["input_ids"] + pad)
            mask.append(ones + [0] * n)
            labels.append(r.get("labels", r["input_ids"]) + [IGNORE_INDEX] * n)
        else:
            ids.append(pad + r["input_ids"])
            mask.append([0] * n + ones)
            labels.append([IGNORE_INDEX] * n + r.get("labels", r["input_ids"]))
    batch: dict[str, torch.Tensor | None] = {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
    }
    for key in IMAGE_INPUTS:
        parts = [r[key] for r in rows if r.get(key) is not None]
        if parts or key == "pixel_values":
            batch[key] = torch.cat(parts) if parts else None
    if any("labels" in r for r in rows):
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
    return batch
