from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from PIL import Image

from clear_lightning.attacks.variants import (
    PERTURBATIONS,
    QUESTION_REWRITES,
    REWRITE_NAMES,
    other_caption_questions,
    perturb_image,
    rewrite_question,
    variant_seed,
)
from clear_lightning.contract import CAPTION_QUESTIONS

QUESTIONS = (
    "What is the profession of Aurelio Vantaggi?",
    "Who is Mira Solberg's father?",
    "When was Tobias Erlund born?",
    "What is shown in this image?",
    "Describe the image in detail.",
    "Aurelio Vantaggi wrote which novel?",
)
FRAMING = {"what", "who", "is", "describe"}  # the only words a rewrite may drop


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[\w']+", text)}


def _case_words(text: str) -> set[str]:
    return set(re.findall(r"[\w']+", text))


def _image(size: tuple[int, int] = (16, 12), mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def _gradient() -> Image.Image:
    row = np.arange(8, dtype=np.uint8) * 32
    pixels = np.stack([np.tile(row, (8, 1))] * 3, axis=-1)
    return Image.fromarray(pixels)


# ---------------------------------------------------------------------------------------------------------------
# Rewrites


def test_there_are_at_least_three_named_rewrites():
    assert len(QUESTION_REWRITES) >= 3
    assert REWRITE_NAMES == tuple(name for name, _ in QUESTION_REWRITES)
    assert len(set(REWRITE_NAMES)) == len(REWRITE_NAMES)


@pytest.mark.parametrize("rewrite", REWRITE_NAMES)
@pytest.mark.parametrize("question", QUESTIONS)
def test_rewrite_changes_string_keeps_content_and_is_deterministic(question, rewrite):
    out = rewrite_question(question, rewrite)
    assert out != question
    assert out == rewrite_question(question, rewrite)
    assert _words(question) - FRAMING <= _words(out)  # every content word survives
    names = {w for w in _case_words(question) if w[0].isupper()} - {"What", "Who", "When", "Describe"}
    assert names <= _case_words(out)  # person names keep their exact spelling and case


def test_rewrites_hand_checked():
    q = "What is the profession of Aurelio Vantaggi?"
    assert rewrite_question(q, "formal") == "Could you tell me what is the profession of Aurelio Vantaggi?"
    assert rewrite_question(q, "terse") == "Tell me: the profession of Aurelio Vantaggi."
    assert rewrite_question(q, "embedded") == f"I am curious about something. {q}"
    assert rewrite_question(q, "answer_first") == f"{q} Please answer in one sentence."
    assert rewrite_question("Describe this photo.", "formal") == "Could you please describe this photo?"
    # "What is" before a verb is not framing to drop: the question is kept whole.
    assert (
        rewrite_question("What is shown in this image?", "terse") == "Tell me: What is shown in this image?"
    )
    # A leading name is never lower-cased; other questions are kept whole.
    assert rewrite_question("Aurelio wrote what?", "formal") == "Could you tell me: Aurelio wrote what?"
    assert rewrite_question("Can you describe it?", "formal") == "Could you tell me: Can you describe it?"


def test_unknown_rewrite_names_the_valid_ones():
    with pytest.raises(ValueError, match="formal") as info:
        rewrite_question("What?", "shout")
    for name in REWRITE_NAMES:
        assert name in str(info.value)


def test_other_caption_questions_excludes_the_asked_one_in_order():
    asked = CAPTION_QUESTIONS[2]
    others = other_caption_questions(asked)
    assert others == [q for q in CAPTION_QUESTIONS if q != asked]
    assert asked not in others and len(others) == len(CAPTION_QUESTIONS) - 1
    assert other_caption_questions("b", ["a", "b", "c"]) == ["a", "c"]
    assert other_caption_questions("z", ["a", "b"]) == ["a", "b"]


# ---------------------------------------------------------------------------------------------------------------
# Seeds


def test_variant_seed_is_stable_and_key_sensitive():
    assert variant_seed(0, "forget/12") == variant_seed(0, "forget/12")
    assert variant_seed(0, "forget/12") != variant_seed(1, "forget/12")
    assert variant_seed(1) != variant_seed("1")
    seed = variant_seed("x")
    assert isinstance(seed, int) and 0 <= seed < 2**63
    # Pinned: a change to the derivation would silently change every stored variant.
    digest = hashlib.sha256(repr((0, "a")).encode()).digest()
    assert variant_seed(0, "a") == int.from_bytes(digest[:8], "big") & (2**63 - 1)


# ---------------------------------------------------------------------------------------------------------------
# Perturbations


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_perturbation_is_seeded_changes_pixels_keeps_size_and_mode(kind):
    image = _image()
    before = image.tobytes()
    out = perturb_image(image, kind, seed=7)
    assert out is not image
    assert image.tobytes() == before  # input not mutated
    assert out.size == image.size and out.mode == image.mode
    assert out.tobytes() != before
    assert perturb_image(image, kind, seed=7).tobytes() == out.tobytes()


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_perturbation_changes_a_smooth_8x8_image(kind):
    image = _gradient()
    assert perturb_image(image, kind, seed=3).tobytes() != image.tobytes()


@pytest.mark.parametrize("kind", ["noise", "crop", "occlusion"])
def test_different_seeds_give_different_images(kind):
    image = _image((32, 32))
    assert perturb_image(image, kind, seed=1).tobytes() != perturb_image(image, kind, seed=2).tobytes()


@pytest.mark.parametrize("mode", ["L", "RGBA"])
@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_perturbation_keeps_non_rgb_mode(kind, mode):
    image = _image(mode=mode)
    before = image.tobytes()
    out = perturb_image(image, kind, seed=5)
    assert out.mode == mode and out.size == image.size
    assert image.tobytes() == before


def test_brightness_changes_a_black_and_white_image_whatever_the_seed():
    pixels = np.zeros((8, 8, 3), dtype=np.uint8)
    pixels[:, 4:] = 255  # brightening leaves this as is, so darkening must be used
    image = Image.fromarray(pixels)
    for seed in range(6):
        assert perturb_image(image, "brightness", seed).tobytes() != image.tobytes()


def test_occlusion_paints_a_gray_quarter():
    image = Image.new("RGB", (20, 20), (0, 0, 0))
    out = np.asarray(perturb_image(image, "occlusion", seed=0))
    gray = (out == 128).all(axis=-1)
    assert gray.sum() == 100  # 10 x 10 of 20 x 20 = 25 %
    rows, cols = np.nonzero(gray)
    assert rows.max() - rows.min() == 9 and cols.max() - cols.min() == 9


def test_noise_sigma_scales_with_strength():
    image = Image.new("RGB", (64, 64), (128, 128, 128))
    diff = np.asarray(perturb_image(image, "noise", seed=0), dtype=float) - 128
    assert diff.std() == pytest.approx(25.5, rel=0.05)
    diff_half = np.asarray(perturb_image(image, "noise", seed=0, strength=0.5), dtype=float) - 128
    assert diff_half.std() == pytest.approx(12.75, rel=0.05)


def test_unknown_perturbation_and_bad_strength_raise():
    with pytest.raises(ValueError) as info:
        perturb_image(_image(), "swirl", seed=0)
    for kind in PERTURBATIONS:
        assert kind in str(info.value)
    with pytest.raises(ValueError, match="strength"):
        perturb_image(_image(), "noise", seed=0, strength=-1)
