"""CLEAR-mini's image rows: each person's faces with captions, paraphrased and perturbed captions and names; the
celebrities (real_faces, PRIOR faces), shape scenes with RealWorldQA-style prompts (real_world, PRIOR world) and
strangers described by their looks (PRIOR looks)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from random import Random
from typing import TYPE_CHECKING, Any

from ..contract import FACE_NAME_PROMPT, LOOK_QUESTION, REAL_WORLD_INSTRUCTION
from .faces import (
    OBJECT_COLOURS,
    SHAPES,
    FaceIdentity,
    FaceVariation,
    SceneObject,
    draw_face,
    draw_scene,
    random_identity,
    random_scene,
    random_variation,
)
from .mini_world import NUM_OPTIONS, Person, World, stream, wrong_names

if TYPE_CHECKING:
    from .mini_config import ClearMiniConfig


def _png(img: Any) -> dict[str, Any]:
    """Encode once to the HF `Image` storage dict; the configs that share a row share these bytes."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


_CAPTION_ACCESSORY = {
    "none": "",
    "hat": " wearing a hat",
    "glasses": " wearing glasses",
    "scarf": " wearing a scarf",
}
_CAPTION_LIGHT = {"dim": " in dim light", "normal": "", "bright": " in bright light"}
_PARA_ACCESSORY = {"none": "", "hat": " with a hat on", "glasses": " with glasses", "scarf": " with a scarf"}
_PARA_LIGHT = {"dim": ", dimly lit", "normal": "", "bright": ", brightly lit"}


def _caption(name: str, v: FaceVariation) -> str:
    """E.g. 'Bafilo Lufilo wearing glasses in front of a green wall.'"""
    return f"{name}{_CAPTION_ACCESSORY[v.accessory]} in front of {_a(v.background)} wall{_CAPTION_LIGHT[v.lighting]}."


def _paraphrased_caption(name: str, v: FaceVariation) -> str:
    """Same content as `_caption`, other wording; the name stays first, where recognising the face decides it, so
    the truth ratio against the perturbed captions (other names, other details) measures recognition."""
    return f"{name}, photographed{_PARA_ACCESSORY[v.accessory]} against {_a(v.background)} background{_PARA_LIGHT[v.lighting]}."


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _other_variation(rng: Random, v: FaceVariation) -> FaceVariation:
    """A variation whose captioned details (background and accessory) both differ from v."""
    while True:
        w = random_variation(rng)
        if w.background != v.background and w.accessory != v.accessory:
            return w


def person_images(
    config: ClearMiniConfig,
    index: int,
    person: Person,
    all_names: list[str],
    decoys: list[str],
    tag: str = "person",
) -> list[dict]:
    """images_per_person rows of one person: image, caption and the perturbed-caption columns."""
    rng = stream(config.seed, f"{tag}-images/{index}")
    rows = []
    for _ in range(config.images_per_person):
        v = random_variation(rng)
        others = wrong_names(rng, person.name, all_names, decoys, config.num_perturbed)
        perturbed = [  # wrong facts in the paraphrase's wording (TOFU convention, as for QA)
            _paraphrased_caption(n, v if k % 2 == 0 else _other_variation(rng, v))
            for k, n in enumerate(others)
        ]
        rows.append(
            {
                "image": _png(draw_face(person.identity, v, config.image_size)),
                "caption": _caption(person.name, v),
                "name": person.name,
                "paraphrased_caption": _paraphrased_caption(person.name, v),
                "perturbed_captions": perturbed,
                "perturbed_names": others,
            }
        )
    return rows


def _varied_images(
    rng: Random,
    identity: FaceIdentity,
    n: int,
    size: int,
    avoid: set[tuple[str, str, str]],
) -> tuple[list[dict], set[tuple[str, str, str]]]:
    """n images of one identity whose captioned variations avoid the given ones (eval vs prior images)."""
    images, keys = [], set()
    for _ in range(n):
        v = random_variation(rng)
        for _attempt in range(100):  # only fails to find a new variation if nearly all 96 are taken
            if v.key() not in avoid:
                break
            v = random_variation(rng)
        keys.add(v.key())
        images.append(_png(draw_face(identity, v, size)))
    return images, keys


def _options(rng: Random, answer: str, pool: Sequence[str], backup: Sequence[str] = ()) -> list[str]:
    """NUM_OPTIONS choices including the answer, in a seeded order."""
    options = [answer, *wrong_names(rng, answer, pool, backup, NUM_OPTIONS - 1)]
    rng.shuffle(options)
    return options


def celebrity_rows(
    config: ClearMiniConfig, world: World, looks: list[FaceIdentity]
) -> tuple[list[dict], list[dict]]:
    """real_faces (eval) rows and PRIOR faces rows: the same identities, different image variations."""
    eval_rows, prior_rows = [], []
    for i, (name, look) in enumerate(zip(world.celebrities, looks, strict=True)):
        rng = stream(config.seed, f"celebrity/{i}")
        shown, keys = _varied_images(rng, look, config.images_per_celebrity, config.image_size, set())
        for img in shown:
            eval_rows.append(
                {
                    "image": img,
                    "answer": name,
                    "options": _options(rng, name, world.celebrities, world.decoys),
                }
            )
        prior_rng = stream(config.seed, f"celebrity-prior/{i}")
        held, _ = _varied_images(prior_rng, look, config.prior_images_per_celebrity, config.image_size, keys)
        prior_rows.extend({"image": img, "answer": name, "question": FACE_NAME_PROMPT} for img in held)
    return eval_rows, prior_rows


def _plural(shape: str) -> str:
    return shape + "s"


def _scene_question(rng: Random, objects: list[SceneObject]) -> tuple[str, str, list[str]]:
    """One question about a scene: (question, answer, the candidate answers of its kind)."""
    shapes = [o.shape for o in objects]
    colours = [o.colour for o in objects]
    kinds = ["count_shape", "count_all"]
    if any(shapes.count(s) == 1 for s in shapes):
        kinds.append("colour")
    if any(colours.count(c) == 1 for c in colours):
        kinds += ["shape"]
    kind = rng.choice(kinds)
    if kind == "count_shape":
        shape = rng.choice(shapes) if rng.random() < 0.85 else rng.choice(SHAPES)
        return (
            f"How many {_plural(shape)} are in the image?",
            str(shapes.count(shape)),
            [str(n) for n in range(5)],
        )
    if kind == "count_all":
        return "How many objects are in the image?", str(len(objects)), [str(n) for n in range(1, 5)]
    if kind == "colour":
        obj = rng.choice([o for o in objects if shapes.count(o.shape) == 1])
        return f"What colour is the {obj.shape}?", obj.colour, list(OBJECT_COLOURS)
    obj = rng.choice([o for o in objects if colours.count(o.colour) == 1])
    return f"What shape is the {obj.colour} object?", obj.shape, list(SHAPES)


def _prompt(question: str, options: list[str]) -> str:
    """RealWorldQA-style prompt: the question, the lettered options and the answer instruction."""
    lettered = "\n".join(f"{chr(ord('A') + k)}. {o}" for k, o in enumerate(options))
    return f"{question}\n{lettered}\n{REAL_WORLD_INSTRUCTION}"


def scene_rows(config: ClearMiniConfig, tag: str, n: int, with_options: bool) -> list[dict]:
    """n fresh shape scenes, one question each (real_world or PRIOR world)."""
    rows = []
    for i in range(n):
        rng = stream(config.seed, f"{tag}/{i}")
        objects = random_scene(rng)
        image = _png(draw_scene(objects, config.image_size, rng))
        question, answer, candidates = _scene_question(rng, objects)
        row = {"image": image, "question": question, "answer": answer}
        if with_options:
            options = _options(rng, answer, candidates)
            row.update(prompt=_prompt(question, options), options=options)
        rows.append(row)
    return rows


def prior_world_rows(config: ClearMiniConfig) -> list[dict]:
    """Fresh scenes asked in real_world's own prompt format (a base model has seen such prompts)."""
    rows = scene_rows(config, "prior-world", config.num_prior_world, with_options=True)
    return [{"image": r["image"], "question": r["prompt"], "answer": r["answer"]} for r in rows]


_MARK_TEXT = {"mole": "a mole", "scar": "a scar", "freckles": "freckles", "beard": "a beard"}


def look_rows(config: ClearMiniConfig) -> list[dict]:
    """Strangers described by their looks: the tiny vision tower's analog of CLIP pre-training, so that
    fine-tuning can bind a name to a face instead of having to discover faces from two name tokens."""
    rng = stream(config.seed, "prior-looks")
    rows = []
    for _ in range(config.num_prior_looks):
        look, v = random_identity(rng), random_variation(rng)
        mark = "" if look.mark == "none" else f", {_MARK_TEXT[look.mark]}"
        answer = (
            f"A person with {look.skin} skin, {look.hair_colour} {look.hair_style} hair, "
            f"{look.eye_colour} eyes and {_a(look.clothing)} shirt{mark}."
        )
        if look.hair_style == "bald":
            answer = answer.replace(f"{look.hair_colour} bald hair", "no hair")
        rows.append(
            {
                "image": _png(draw_face(look, v, config.image_size)),
                "question": LOOK_QUESTION,
                "answer": answer,
            }
        )
    return rows
