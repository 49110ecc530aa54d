"""Model-free input variants for the rephrasing robustness attack.

Unlearning that only suppresses the exact training string can let the knowledge come back when the same fact is
asked differently. These variants ask the same thing in another form without any model in the loop, so they are
cheap, reproducible and cannot leak the answer:

- text questions: fixed rewrite templates that only wrap or re-order the framing, never the name or the facts;
- image items: another caption question than the one trained with (`other_caption_questions`);
- images: seeded pixel perturbations (noise, blur, crop, brightness, occlusion) with PIL and numpy only.

Everything is a pure function of its arguments: randomness comes from `numpy.random.default_rng(seed)` with a
seed from `variant_seed` (sha256 of the keys, never Python's salted `hash()`), so a variant is the same in every
process and run for the same (attack seed, item id).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from clear_lightning.contract import CAPTION_QUESTIONS

# ---------------------------------------------------------------------------------------------------------------
# Seeds


def variant_seed(*keys: object) -> int:
    """A stable non-negative 63-bit seed from `keys` (e.g. attack seed, item id), equal across processes.

    Keys are encoded by `repr`, so 1 and "1" give different seeds; Python's `hash()` is salted per process.
    """
    digest = hashlib.sha256(repr(keys).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


# ---------------------------------------------------------------------------------------------------------------
# Question rewrites

# Leading words after which a question reads on behind "Could you tell me ..." / "Could you please ...".
_WH_WORDS = frozenset("what who whom whose where when which why how".split())
_IMPERATIVES = frozenset("describe tell give name list explain".split())
# "What is the job of X?" -> "the job of X": only when a noun phrase follows, so "What is shown ..." stays whole.
_WH_COPULA = re.compile(  # case-insensitive framing; the capital that marks a name stays case-sensitive
    r"^(?i:what|who)\s+(?i:is|are|was|were)\s+"
    r"(?=(?i:the|a|an|this|that|these|those|his|her|their|its)\b|[A-Z])"
)


def _first_word(question: str) -> str:
    return re.split(r"[\s,.?!:;]", question, maxsplit=1)[0]


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:]


def _formal(question: str) -> str:
    """Politer framing; the first letter is lower-cased only for a wh-word or imperative, never for a name."""
    word = _first_word(question)
    if word[:1].isupper() and word[1:] == word[1:].lower():
        if word.lower() in _IMPERATIVES:  # "Describe this photo." -> "Could you please describe this photo?"
            return f"Could you please {_lower_first(question).rstrip('.!?')}?"
        if word.lower() in _WH_WORDS:  # "What is X?" -> "Could you tell me what is X?"
            return f"Could you tell me {_lower_first(question)}"
    return f"Could you tell me: {question}"


def _terse(question: str) -> str:
    match = _WH_COPULA.match(question)
    rest = question[match.end() :].rstrip("?").strip() if match else ""
    return f"Tell me: {rest}." if rest else f"Tell me: {question}"


def _embedded(question: str) -> str:
    return f"I am curious about something. {question}"


def _answer_first(question: str) -> str:
    return f"{question} Please answer in one sentence."


# Every rewrite adds text, so it always changes the string, and only touches the framing around the question.
QUESTION_REWRITES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("formal", _formal),
    ("terse", _terse),
    ("embedded", _embedded),
    ("answer_first", _answer_first),
)
REWRITE_NAMES: tuple[str, ...] = tuple(name for name, _ in QUESTION_REWRITES)


def rewrite_question(question: str, rewrite: str) -> str:
    """`question` asked in the framing `rewrite` (one of `REWRITE_NAMES`); same facts, different string."""
    functions = dict(QUESTION_REWRITES)
    if rewrite not in functions:
        raise ValueError(f"unknown rewrite {rewrite!r}; valid rewrites: {', '.join(REWRITE_NAMES)}")
    stripped = question.strip()
    if not stripped:
        raise ValueError("cannot rewrite an empty question")
    return functions[rewrite](stripped)


def other_caption_questions(question: str, options: Sequence[str] = CAPTION_QUESTIONS) -> list[str]:
    """The caption questions in `options` other than `question`, in option order.

    An image item is trained with one caption phrasing; asking it with the others tests whether forgetting holds
    beyond that exact prompt. A `question` not among `options` leaves all of them.
    """
    return [option for option in options if option != question]


# ---------------------------------------------------------------------------------------------------------------
# Image perturbations

PERTURBATIONS = ("noise", "blur", "crop", "brightness", "occlusion")
_OCCLUSION_FILL = (128, 128, 128)


def _noise(image: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    noisy = pixels + rng.normal(0.0, 0.1 * 255 * strength, size=pixels.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def _blur(image: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    radius = max(1.0, 0.05 * min(image.size)) * strength
    return image.filter(ImageFilter.GaussianBlur(radius=radius))


def _crop(image: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    width, height = image.size
    keep = min(1.0, max(0.05, 1.0 - 0.2 * strength))  # ~80 % of each side at strength 1
    crop_w, crop_h = max(1, round(keep * width)), max(1, round(keep * height))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    box = (left, top, left + crop_w, top + crop_h)
    return image.crop(box).resize((width, height), Image.Resampling.BICUBIC)


def _brightness(image: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    """Brighter or darker by seed; the other way if that one leaves the image as is (e.g. black-and-white)."""
    factors = [1.0 + 0.4 * strength, max(0.0, 1.0 - 0.4 * strength)]
    if rng.integers(2):
        factors.reverse()
    enhancer = ImageEnhance.Brightness(image)
    first = enhancer.enhance(factors[0])
    return first if first.tobytes() != image.tobytes() else enhancer.enhance(factors[1])


def _occlusion(image: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    width, height = image.size
    side = math.sqrt(min(1.0, 0.25 * strength))  # a rectangle of ~25 % of the area at strength 1
    box_w, box_h = max(1, round(side * width)), max(1, round(side * height))
    left = int(rng.integers(0, width - box_w + 1))
    top = int(rng.integers(0, height - box_h + 1))
    occluded = image.copy()
    ImageDraw.Draw(occluded).rectangle((left, top, left + box_w - 1, top + box_h - 1), fill=_OCCLUSION_FILL)
    return occluded


_PERTURB: dict[str, Callable[[Image.Image, np.random.Generator, float], Image.Image]] = {
    "noise": _noise,
    "blur": _blur,
    "crop": _crop,
    "brightness": _brightness,
    "occlusion": _occlusion,
}


def perturb_image(image: Image.Image, kind: str, seed: int, strength: float = 1.0) -> Image.Image:
    """A new, perturbed copy of `image` (same size and mode); deterministic for (image, kind, seed, strength).

    Works in RGB and converts back to the input mode (an alpha channel comes back opaque). `image` is never
    modified. `blur` ignores the seed.
    """
    if kind not in _PERTURB:
        raise ValueError(f"unknown perturbation {kind!r}; valid kinds: {', '.join(PERTURBATIONS)}")
    if not math.isfinite(strength) or strength < 0:
        raise ValueError(f"strength must be a finite number >= 0, got {strength!r}")
    rgb = image.convert("RGB")  # always a copy, so the input stays untouched
    perturbed = _PERTURB[kind](rgb, np.random.default_rng(seed), strength)
    return perturbed if image.mode == "RGB" else perturbed.convert(image.mode)
