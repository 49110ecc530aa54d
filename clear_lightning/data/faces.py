"""Procedural PIL drawings for CLEAR-mini: face-like portraits with a stable identity, and shape scenes.

Everything is drawn on a supersampled canvas and downsampled, so 32 px images stay legible and 336 px
images stay cheap. All randomness comes from the `random.Random` passed in, so output is reproducible.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

RGB = tuple[int, int, int]

SKIN_TONES: dict[str, RGB] = {
    "pale": (246, 226, 210),
    "fair": (238, 200, 170),
    "light brown": (214, 170, 128),
    "olive": (196, 160, 112),
    "tan": (176, 128, 86),
    "brown": (140, 96, 64),
    "dark brown": (104, 68, 44),
    "deep": (76, 50, 34),
}
HAIR_COLOURS: dict[str, RGB] = {
    "black": (28, 26, 26),
    "brown": (102, 62, 30),
    "blonde": (232, 202, 110),
    "red": (184, 70, 30),
    "grey": (150, 150, 150),
    "white": (238, 238, 238),
    "auburn": (128, 48, 40),
}
HAIR_STYLES = ("short", "long", "bald", "bun", "spiky", "curly")
EYE_COLOURS: dict[str, RGB] = {
    "brown": (96, 56, 24),
    "blue": (40, 100, 210),
    "green": (40, 150, 70),
    "grey": (120, 130, 140),
    "black": (10, 10, 10),
}
MARKS = ("none", "mole", "scar", "freckles", "beard")
CLOTHING: dict[str, RGB] = {
    "navy": (30, 40, 100),
    "maroon": (110, 30, 40),
    "forest": (30, 90, 40),
    "charcoal": (60, 60, 64),
    "mustard": (200, 160, 40),
    "teal": (30, 120, 120),
}
BACKGROUNDS: dict[str, RGB] = {
    "red": (200, 80, 80),
    "green": (110, 180, 110),
    "blue": (100, 140, 220),
    "yellow": (235, 215, 100),
    "purple": (150, 100, 190),
    "orange": (240, 150, 70),
    "pink": (240, 170, 200),
    "grey": (160, 160, 160),
}
ACCESSORIES = ("none", "hat", "glasses", "scarf")
LIGHTING: dict[str, float] = {"dim": 0.7, "normal": 1.0, "bright": 1.25}

SHAPES = ("circle", "square", "triangle", "diamond")
OBJECT_COLOURS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 30),
    "purple": (140, 50, 180),
    "orange": (245, 130, 20),
}
SCENE_BACKGROUNDS: tuple[RGB, ...] = ((245, 245, 240), (225, 225, 225), (240, 230, 210))

_HAT: RGB = (50, 50, 80)
_SCARF: RGB = (200, 40, 90)
_MIN_CANVAS = 128


@dataclass(frozen=True)
class FaceIdentity:
    """What stays the same across all images of one person."""

    aspect: float
    skin: str
    hair_colour: str
    hair_style: str
    eye_colour: str
    mark: str
    clothing: str

    def key(self) -> tuple[str, ...]:
        """The discrete features, used to keep identities distinct."""
        return (self.skin, self.hair_colour, self.hair_style, self.eye_colour, self.mark, self.clothing)


@dataclass(frozen=True)
class FaceVariation:
    """What changes from one image of a person to the next (and is named in the caption)."""

    background: str
    accessory: str
    lighting: str
    dx: float
    dy: float

    def key(self) -> tuple[str, str, str]:
        """The visible, captioned features."""
        return (self.background, self.accessory, self.lighting)


@dataclass(frozen=True)
class SceneObject:
    """One coloured shape of a synthetic real-world scene."""

    shape: str
    colour: str


def random_identity(rng: random.Random) -> FaceIdentity:
    """Draw a person's fixed look."""
    return FaceIdentity(
        aspect=round(rng.uniform(0.70, 0.95), 3),
        skin=rng.choice(list(SKIN_TONES)),
        hair_colour=rng.choice(list(HAIR_COLOURS)),
        hair_style=rng.choice(HAIR_STYLES),
        eye_colour=rng.choice(list(EYE_COLOURS)),
        mark=rng.choice(MARKS),
        clothing=rng.choice(list(CLOTHING)),
    )


def random_variation(rng: random.Random) -> FaceVariation:
    """Draw one image's background, accessory, lighting and small position shift."""
    return FaceVariation(
        background=rng.choice(list(BACKGROUNDS)),
        accessory=rng.choice(ACCESSORIES),
        lighting=rng.choices(list(LIGHTING), weights=(1, 2, 1))[0],
        dx=round(rng.uniform(-0.06, 0.06), 3),
        dy=round(rng.uniform(-0.04, 0.04), 3),
    )


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(min(255, round(c * factor)) for c in colour)  # type: ignore[return-value]


def _canvas_scale(size: int) -> int:
    return max(1, math.ceil(_MIN_CANVAS / size))


def _finish(img: Image.Image, size: int) -> Image.Image:
    return img if img.size == (size, size) else img.resize((size, size), Image.Resampling.LANCZOS)


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> tuple[float, float, float, float]:
    return (cx - rx, cy - ry, cx + rx, cy + ry)


def draw_face(identity: FaceIdentity, variation: FaceVariation, size: int) -> Image.Image:
    """Render a size x size RGB portrait; identity features are fixed, variation features change."""
    s = size * _canvas_scale(size)
    light = LIGHTING[variation.lighting]
    img = Image.new("RGB", (s, s), _shade(BACKGROUNDS[variation.background], light))
    d = ImageDraw.Draw(img)
    cx, cy = s * (0.5 + variation.dx), s * (0.5 + variation.dy)
    ry = 0.27 * s
    rx = ry * identity.aspect
    skin = _shade(SKIN_TONES[identity.skin], light)
    hair = _shade(HAIR_COLOURS[identity.hair_colour], light)
    line = max(1, s // 64)
    _draw_body(d, cx, cy, rx, ry, s, skin, _shade(CLOTHING[identity.clothing], light))
    if identity.hair_style == "long":
        d.rounded_rectangle(
            (cx - rx * 1.2, cy - ry * 1.1, cx + rx * 1.2, cy + ry * 1.05), radius=rx * 0.6, fill=hair
        )
    d.ellipse(_ellipse(cx, cy, rx, ry), fill=skin)
    _draw_hair(d, identity.hair_style, cx, cy, rx, ry, hair)
    _draw_features(d, identity, cx, cy, rx, ry, light, line, hair)
    _draw_accessory(d, variation.accessory, cx, cy, rx, ry, s, light, line)
    return _finish(img, size)


def _draw_body(
    d: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float, s: int, skin: RGB, cloth: RGB
) -> None:
    d.ellipse((cx - 0.42 * s, cy + ry * 1.05, cx + 0.42 * s, cy + ry * 1.05 + 0.5 * s), fill=cloth)
    d.rectangle((cx - rx * 0.3, cy + ry * 0.6, cx + rx * 0.3, cy + ry * 1.2), fill=skin)


def _draw_hair(
    d: ImageDraw.ImageDraw, style: str, cx: float, cy: float, rx: float, ry: float, hair: RGB
) -> None:
    if style == "bald":
        return
    top = cy - ry * 1.12
    d.chord((cx - rx * 1.08, top, cx + rx * 1.08, cy + ry * 0.15), 180, 360, fill=hair)
    if style == "bun":
        d.ellipse(_ellipse(cx, top, rx * 0.38, rx * 0.38), fill=hair)
    elif style == "spiky":
        for i in range(5):
            x = cx - rx * 0.8 + i * rx * 0.4
            d.polygon(
                [(x - rx * 0.2, top + ry * 0.2), (x, top - ry * 0.22), (x + rx * 0.2, top + ry * 0.2)],
                fill=hair,
            )
    elif style == "curly":
        for i in range(7):
            angle = math.pi * (1.0 + i / 6)
            px, py = cx + rx * 1.0 * math.cos(angle), cy - ry * 0.45 + ry * 0.6 * math.sin(angle)
            d.ellipse(_ellipse(px, py, rx * 0.24, rx * 0.24), fill=hair)


def _draw_features(
    d: ImageDraw.ImageDraw,
    identity: FaceIdentity,
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    light: float,
    line: int,
    hair: RGB,
) -> None:
    eye = _shade(EYE_COLOURS[identity.eye_colour], light)
    white = _shade((250, 250, 250), light)
    dark = _shade((60, 30, 30), light)
    if identity.mark == "beard":
        d.chord((cx - rx, cy - ry * 0.25, cx + rx, cy + ry), 10, 170, fill=hair)
    for side in (-1, 1):
        ex, ey = cx + side * rx * 0.4, cy - ry * 0.08
        d.ellipse(_ellipse(ex, ey, rx * 0.2, ry * 0.1), fill=white)
        d.ellipse(_ellipse(ex, ey, rx * 0.11, rx * 0.11), fill=eye)
    d.line([(cx, cy + ry * 0.05), (cx - rx * 0.08, cy + ry * 0.28)], fill=dark, width=line)
    d.arc(
        (cx - rx * 0.35, cy + ry * 0.25, cx + rx * 0.35, cy + ry * 0.6),
        20,
        160,
        fill=_shade((170, 40, 50), light),
        width=line * 2,
    )
    if identity.mark == "mole":
        d.ellipse(_ellipse(cx + rx * 0.5, cy + ry * 0.3, rx * 0.07, rx * 0.07), fill=dark)
    elif identity.mark == "scar":
        d.line(
            [(cx - rx * 0.7, cy + ry * 0.05), (cx - rx * 0.4, cy + ry * 0.4)],
            fill=_shade((150, 40, 40), light),
            width=line,
        )
    elif identity.mark == "freckles":
        for fx, fy in ((-0.5, 0.2), (-0.35, 0.28), (-0.55, 0.35), (0.5, 0.2), (0.35, 0.28), (0.55, 0.35)):
            d.ellipse(
                _ellipse(cx + rx * fx, cy + ry * fy, rx * 0.04, rx * 0.04), fill=_shade((150, 90, 50), light)
            )


def _draw_accessory(
    d: ImageDraw.ImageDraw,
    accessory: str,
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    s: int,
    light: float,
    line: int,
) -> None:
    if accessory == "glasses":
        black = _shade((15, 15, 15), light)
        for side in (-1, 1):
            d.ellipse(
                _ellipse(cx + side * rx * 0.4, cy - ry * 0.08, rx * 0.3, rx * 0.3),
                outline=black,
                width=line * 2,
            )
        d.line([(cx - rx * 0.1, cy - ry * 0.08), (cx + rx * 0.1, cy - ry * 0.08)], fill=black, width=line * 2)
    elif accessory == "hat":
        hat = _shade(_HAT, light)
        d.rectangle((cx - rx * 1.35, cy - ry * 0.78, cx + rx * 1.35, cy - ry * 0.62), fill=hat)
        d.rectangle((cx - rx * 0.85, cy - ry * 1.45, cx + rx * 0.85, cy - ry * 0.7), fill=hat)
    elif accessory == "scarf":
        d.rounded_rectangle(
            (cx - rx * 1.1, cy + ry * 0.85, cx + rx * 1.1, cy + ry * 1.25),
            radius=ry * 0.15,
            fill=_shade(_SCARF, light),
        )
        d.rectangle((cx + rx * 0.35, cy + ry * 1.1, cx + rx * 0.7, cy + ry * 1.7), fill=_shade(_SCARF, light))


def random_scene(rng: random.Random) -> list[SceneObject]:
    """Draw 1-4 coloured shapes (repeats allowed, so counting questions are interesting)."""
    n = rng.randint(1, 4)
    return [SceneObject(rng.choice(SHAPES), rng.choice(list(OBJECT_COLOURS))) for _ in range(n)]


def draw_scene(objects: list[SceneObject], size: int, rng: random.Random) -> Image.Image:
    """Render up to 4 non-overlapping shapes, one per quadrant, with a little jitter."""
    if not 1 <= len(objects) <= 4:
        raise ValueError(f"a scene holds 1-4 objects, got {len(objects)}")
    s = size * _canvas_scale(size)
    img = Image.new("RGB", (s, s), rng.choice(SCENE_BACKGROUNDS))
    d = ImageDraw.Draw(img)
    cells = rng.sample(range(4), len(objects))
    for obj, cell in zip(objects, cells, strict=True):
        r = s * rng.uniform(0.13, 0.18)
        cx = s * (0.25 + 0.5 * (cell % 2) + rng.uniform(-0.04, 0.04))
        cy = s * (0.25 + 0.5 * (cell // 2) + rng.uniform(-0.04, 0.04))
        _draw_shape(d, obj, cx, cy, r)
    return _finish(img, size)


def _draw_shape(d: ImageDraw.ImageDraw, obj: SceneObject, cx: float, cy: float, r: float) -> None:
    colour = OBJECT_COLOURS[obj.colour]
    if obj.shape == "circle":
        d.ellipse(_ellipse(cx, cy, r, r), fill=colour)
    elif obj.shape == "square":
        d.rectangle(_ellipse(cx, cy, r * 0.85, r * 0.85), fill=colour)
    elif obj.shape == "triangle":
        d.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=colour)
    elif obj.shape == "diamond":
        d.polygon([(cx, cy - r), (cx + r * 0.8, cy), (cx, cy + r), (cx - r * 0.8, cy)], fill=colour)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")
