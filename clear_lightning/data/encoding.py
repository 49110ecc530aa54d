"""Token ids and answer-only label masks, computed from the processor's own (image-expanded) output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .examples import Example

IGNORE_INDEX = -100
# The processor outputs that describe images: LLaVA gives pixel_values [n_images, 3, H, W]; Qwen2-VL gives
# flattened patches [n_patches, d] plus image_grid_thw [n_images, 3]. Both concatenate along dim 0. Mllama's are
# one entry per row: pixel_values [rows, images, tiles, 3, H, W], aspect_ratio_ids [rows, images] and
# aspect_ratio_mask [rows, images, tiles], so its batches never mix text and image rows (`pad_batch`).
IMAGE_INPUTS = ("pixel_values", "image_grid_thw", "image_sizes", "aspect_ratio_ids", "aspect_ratio_mask")
# Processor outputs with one entry per token, padded like input_ids (with 0). A model YAML names those its model
# takes (`model.token_inputs`, given to `ExampleEncoder`); the value says what the answer tokens get:
# - "zero": per-token types that describe the prompt only (answer tokens are text): Qwen2-VL's
#   `mm_token_type_ids` (0 text, 1 image, 2 video), from which the model builds its M-RoPE positions; Gemma-3's
#   `token_type_ids` (1 on image tokens), from which it builds the bidirectional attention over each image;
# - "continue": the prompt's last entry, repeated: Mllama's `cross_attention_mask` [tokens, images, tiles] (which
#   image tiles a token cross-attends to: every token from the image's `<|image|>` on, the answer included).
TOKEN_INPUTS = {"mm_token_type_ids": "zero", "token_type_ids": "zero", "cross_attention_mask": "continue"}
CONTINUED_INPUTS = tuple(k for k, fill in TOKEN_INPUTS.items() if fill == "continue")


def image_inputs(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The image tensors (and per-token inputs) of a batch, to pass to the model as keyword arguments
    (none for text rows)."""
    return {k: batch[k] for k in (*IMAGE_INPUTS, *TOKEN_INPUTS) if batch.get(k) is not None}


def _as_list(x: Any) -> list:
    return x.tolist() if hasattr(x, "tolist") else [_as_list(v) if hasattr(v, "__len__") else v for v in x]


def _zero(entry: Any) -> Any:
    """The zero of one token's entry: 0, or a nested list of zeros (Mllama's [images][tiles])."""
    return [_zero(e) for e in entry] if isinstance(entry, list) else 0


@dataclass(frozen=True)
class PromptTemplate:
    """A chat layout from the model YAML, e.g. LLaVA-1.5's `USER: <image>\\n{q} ASSISTANT: {a}</s>` (benchmark.md §3)."""

    template: str = "USER: {image}{question} ASSISTANT:"
    image: str = "<image>\n"
    answer_prefix: str = " "
    answer_end: str | None = (
        None  # the token that ends an answer (a chat turn's end); None = the tokenizer's EOS
    )

    def prompt(self, question: str, has_image: bool) -> str:
        return self.template.format(image=self.image if has_image else "", question=question)


class ExampleEncoder:
    """Encodes a prompt once through the processor and appends answer ids, so the mask is exact.

    The prompt goes through the processor (which expands `<image>` into one token per patch). The
    answer ids are those the answer gets when tokenised *together with* the prompt text (benchmark.md §3):
    the tokenizer's ids for `prompt_text + answer_prefix + answer` beyond its ids for `prompt_text`,
    followed by EOS. Tokenising `answer_prefix + answer` on its own is not the same with SentencePiece
    tokenizers (Llama family): their dummy prefix adds a `▁` to the standalone text, e.g. a stray `▁`
    before `" " + answer`, or a word boundary the joint text `[/INST]answer` does not have. The image
    placeholder is a single special token in that text tokenisation; only the difference is used, so
    it applies as it is to the processor's image-expanded prompt. Labels are -100 on every prompt
    position, so neither image nor prompt tokens leak into the loss.
    """

    def __init__(
        self,
        processor: Any,
        template: PromptTemplate,
        add_eos: bool = True,
        cache: bool = False,
        token_inputs: Sequence[str] = (),
    ):
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.template = template
        self.add_eos = add_eos
        unknown = [k for k in token_inputs if k not in TOKEN_INPUTS]
        if unknown:
            raise ValueError(
                f"unknown per-token input {unknown[0]!r} (model.token_inputs): use {list(TOKEN_INPUTS)}"
            )
        self.token_inputs = tuple(token_inputs)  # the processor's per-token outputs the model takes
        self._cache: dict[str, dict[str, Any]] | None = {} if cache else None

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def end_id(self) -> int:
        """The id that ends every answer: the template's `answer_end` token, else the tokenizer's EOS."""
        end = self.template.answer_end
        if end is None:
            return self.tokenizer.eos_token_id
        ids = self.tokenizer.convert_tokens_to_ids([end])
        if not ids or ids[0] is None or ids[0] == self.tokenizer.unk_token_id:
            raise ValueError(f"prompt.answer_end {end!r} is not a token of the tokenizer")
        return ids[0]

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
        out.update({k: _as_list(enc[k][0]) for k in self.token_inputs if k in enc})
        if self._cache is not None:
            self._cache[example.id] = out
        return out

    def answer_ids(self, answer: str, prompt_text: str | None = None) -> list[int]:
        """The answer's ids (+ EOS) to append to the ids of `prompt_text`, as the two tokenise together.

        Without `prompt_text`, the answer prefix + answer tokenised on their own (the ids a SentencePiece
        tokenizer gives them there can differ from the joint ones, see the class docstring). Raises
        ValueError where a merge crosses the join (no answer ids fit after the prompt's own; `encode`
        handles that case).
        """
        if prompt_text is None:
            ids = list(
                self.tokenizer(self.template.answer_prefix + answer, add_special_tokens=False)["input_ids"]
            )
        else:
            drop, ids, _ = self._join(prompt_text, answer)
            if drop:
                raise ValueError(
                    f"a token merge crosses the prompt/answer join of {prompt_text!r} + {answer!r}: "
                    f"the joint tokenisation re-tokenises the prompt's last {drop} token(s); use encode()"
                )
        return ids + self._eos()

    def _eos(self) -> list[int]:
        return [self.end_id] if self.add_eos else []

    def _join(self, prompt_text: str, answer: str) -> tuple[int, list[int], int]:
        """Tokenise `prompt_text` alone and `prompt_text + answer_prefix + answer` together (no special
        tokens) and split the joint ids where they leave the prompt's own: `(drop, ids, unsupervised)`.

        Normally the joint ids start with the prompt's ids: drop = 0, ids = the rest, unsupervised = 0.
        Where a merge crosses the join (e.g. `]` + `K` in `[/INST]Kuwait` for a vocabulary holding `]K`),
        the joint ids win: the prompt's last `drop` ids are replaced by `ids`, whose first `unsupervised`
        tokens hold only prompt characters (found from the character offsets; all of `ids` are
        supervised where the tokenizer gives no offsets), so the token that straddles the join is
        supervised with the answer.
        """
        prompt = list(self.tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
        text = prompt_text + self.template.answer_prefix + answer
        joint = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if joint[: len(prompt)] == prompt:
            return 0, joint[len(prompt) :], 0
        keep = next((i for i, (a, b) in enumerate(zip(prompt, joint, strict=False)) if a != b), len(joint))
        unsupervised = 0
        try:
            offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
                "offset_mapping"
            ]
        except (NotImplementedError, TypeError, KeyError, ValueError):  # slow tokenizers have no offsets
            offsets = None
        if offsets is not None and len(offsets) == len(joint):
            while keep + unsupervised < len(joint) and offsets[keep + unsupervised][1] <= len(prompt_text):
                unsupervised += 1
        return len(prompt) - keep, joint[keep:], unsupervised

    def encode(self, example: Example, answer: str | None = None) -> dict[str, Any]:
        """Prompt + answer with labels on the answer tokens only; the ids are the joint tokenisation's."""
        prompt = self.prompt(example)
        prompt_ids = prompt["input_ids"]
        prompt_text = self.template.prompt(example.question, example.image is not None)
        drop, ids, unsupervised = self._join(prompt_text, example.answer if answer is None else answer)
        if drop:
            tail = list(self.tokenizer(prompt_text, add_special_tokens=False)["input_ids"])[-drop:]
            if prompt_ids[-drop:] != tail:
                raise ValueError(
                    f"{example.id}: a token merge crosses the prompt/answer join and the processor's prompt "
                    "does not end with the tokenizer's ids for the prompt text"
                )
            prompt_ids = prompt_ids[:-drop]
        target = ids + self._eos()
        return {
            **prompt,
            **{
                k: _answer_filled(k, prompt[k][: len(prompt_ids)], len(target))
                for k in TOKEN_INPUTS
                if k in prompt
            },
            "input_ids": prompt_ids + target,
            "labels": [IGNORE_INDEX] * (len(prompt_ids) + unsupervised) + target[unsupervised:],
        }


def _answer_filled(key: str, prompt: list, n: int) -> list:
    """A per-token input over the prompt extended over `n` answer tokens (`TOKEN_INPUTS` says with what)."""
    fill = prompt[-1] if TOKEN_INPUTS[key] == "continue" else _zero(prompt[-1])
    return prompt + [fill] * n


def _same_shape(parts: list[torch.Tensor]) -> list[torch.Tensor]:
    """Zero-pad every axis but the first to the largest: LLaVA-NeXT's anyres pixel_values are [1, tiles, 3, H, W]
    with a tile count that depends on the image's shape (the processor pads it within one call, but rows are
    processed one by one); the model reads each image's real tile count from `image_sizes` and drops the rest."""
    if len({p.shape[1:] for p in parts}) <= 1:
        return parts
    widest = [max(p.shape[d] for p in parts) for d in range(1, parts[0].dim())]
    out = []
    for p in parts:
        pad = [x for d in reversed(range(1, p.dim())) for x in (0, widest[d - 1] - p.shape[d])]
        out.append(torch.nn.functional.pad(p, pad))
    return out


def pad_batch(rows: list[dict[str, Any]], pad_id: int, side: str = "right") -> dict[str, torch.Tensor | None]:
    """Pad a list of encoded rows; image tensors concatenate over the rows that carry an image, per-token
    inputs (`TOKEN_INPUTS`) pad with 0 on the same side as the ids.

    LLaVA (and Qwen2-VL, Gemma-3) scatter image features by image-token count, so text rows need no dummy image,
    and rows whose images expand to different token counts (dynamic resolution, anyres) pad like any other rows.
    Rows with a `cross_attention_mask` (Mllama) read their image tensors by row: a batch of them must not mix
    text and image rows (ValueError; `model.batch_by_modality` keeps the data module's batches apart).
    """
    images = {r.get("pixel_values") is not None for r in rows}
    if len(images) > 1 and any("cross_attention_mask" in r for r in rows):
        raise ValueError(
            "a batch mixes text and image rows, but the model reads its image inputs by row (cross-attention): "
            "set model.batch_by_modality=true"
        )
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
            batch[key] = torch.cat(_same_shape(parts)) if parts else None
    for key in TOKEN_INPUTS:
        if any(key in r for r in rows):
            zero = _zero(next(r[key][0] for r in rows if r.get(key)))
            seqs = [r.get(key, [zero] * len(r["input_ids"])) for r in rows]
            padded = [
                s + [zero] * (longest - len(s)) if side == "right" else [zero] * (longest - len(s)) + s
                for s in seqs
            ]
            batch[key] = torch.tensor(padded, dtype=torch.long)
    if any("labels" in r for r in rows):
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
    return batch
