"""Label masks cover exactly the answer tokens, with `<image>` expanded by the processor (benchmark.md §3)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from clear_lightning.data.batching import EvalCollator
from clear_lightning.data.encoding import IGNORE_INDEX, ExampleEncoder, PromptTemplate, pad_batch
from clear_lightning.data.examples import Example, caption_question
from clear_lightning.models.tiny import TinyLlavaSpec, build_processor, train_tokenizer

TEXTS = [
    "USER: ASSISTANT: Where was Bafilo Lufilo born?",
    "Bafilo Lufilo was born in Keravo.",
    "Describe it.",
]


@pytest.fixture(scope="module")
def encoder() -> ExampleEncoder:
    spec = TinyLlavaSpec(image_size=32, patch_size=8)
    processor = build_processor(train_tokenizer(TEXTS * 5, vocab_size=400), spec)
    return ExampleEncoder(processor, PromptTemplate())


def test_text_row_mask_is_answer_plus_eos(encoder: ExampleEncoder) -> None:
    ex = Example("t/0", "train", "qa", "Where was Bafilo Lufilo born?", "Bafilo Lufilo was born in Keravo.")
    row = encoder.encode(ex)
    tok = encoder.tokenizer
    answer = tok(" Bafilo Lufilo was born in Keravo.", add_special_tokens=False)["input_ids"] + [
        tok.eos_token_id
    ]
    prompt = tok("USER: Where was Bafilo Lufilo born? ASSISTANT:")["input_ids"]
    assert row["input_ids"] == prompt + answer
    assert row["labels"] == [IGNORE_INDEX] * len(prompt) + answer
    assert row["input_ids"][0] == tok.bos_token_id and row["input_ids"][-1] == tok.eos_token_id


def test_image_row_masks_every_expanded_image_token(encoder: ExampleEncoder) -> None:
    ex = Example(
        "c/0", "train", "caption", "Describe it.", "Bafilo Lufilo was born.", image=Image.new("RGB", (32, 32))
    )
    row = encoder.encode(ex)
    image_id = encoder.tokenizer.convert_tokens_to_ids("<image>")
    ids, labels = torch.tensor(row["input_ids"]), torch.tensor(row["labels"])
    assert int((ids == image_id).sum()) == (32 // 8) ** 2  # one token per patch, not one per <image>
    assert not ((labels != IGNORE_INDEX) & (ids == image_id)).any()
    supervised = labels[labels != IGNORE_INDEX].tolist()
    tok = encoder.tokenizer
    assert supervised == tok(" Bafilo Lufilo was born.", add_special_tokens=False)["input_ids"] + [
        tok.eos_token_id
    ]
    first_answer = int((labels != IGNORE_INDEX).nonzero()[0])
    assert first_answer == len(encoder.prompt(ex)["input_ids"])  # everything before it is prompt + image
    assert row["pixel_values"].shape == (1, 3, 32, 32)


def test_pad_batch_right_and_left(encoder: ExampleEncoder) -> None:
    a = {"input_ids": [5, 6, 7], "labels": [IGNORE_INDEX, 6, 7], "pixel_values": None}
    b = {"input_ids": [5], "labels": [5], "pixel_values": None}
    right = pad_batch([a, b], pad_id=0)
    assert right["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert right["labels"].tolist() == [[IGNORE_INDEX, 6, 7], [5, IGNORE_INDEX, IGNORE_INDEX]]
    assert right["pixel_values"] is None
    left = pad_batch([a, b], pad_id=0, side="left")
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 0, 5]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]


def test_eval_collator_rows_and_generation_prompts(encoder: ExampleEncoder) -> None:
    img = Image.new("RGB", (32, 32))
    items = [
        (3, Example("s/3", "forget_qa", "qa", "Where?", "Keravo.", None, "In Keravo.", ("A.", "B."))),
        (4, Example("s/4", "forget_face_name", "face_name", "Name?", "Bafilo", img, None, ("Lufilo",))),
    ]
    batch = EvalCollator(encoder)(items)
    assert batch["index"].tolist() == [3, 4]
    assert batch["row_item"].tolist() == [0, 0, 0, 0, 1, 1]
    assert batch["row_role"].tolist() == [0, 1, 2, 2, 0, 2]  # answer, paraphrase, perturbed...
    assert batch["score"]["pixel_values"].shape[0] == 2  # image rows only
    gen = batch["generate"]
    assert gen["pixel_values"].shape[0] == 1
    assert gen["attention_mask"][:, -1].tolist() == [1, 1]  # left-padded: prompts end together


def test_caption_question_is_seeded_per_example() -> None:
    assert caption_question("x/1", 0) == caption_question("x/1", 0)
    assert len({caption_question(f"x/{i}", 0) for i in range(50)}) > 3
