"""Example rows: every CLEAR/TOFU table row becomes one `Example`, the unit the pipeline trains and scores on."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .source import SnapshotSource

FACE_NAME_PROMPT = "The name of the person on the image is"  # SPEC §3

CAPTION_QUESTIONS = (  # SPEC §3: one phrasing per caption example, seeded by the example id
    "What can you see in this picture?",
    "Describe the image in detail.",
    "What is shown in this image?",
    "Tell me what happens in this picture.",
    "What do you see here?",
    "Describe this photo.",
    "Can you describe the image?",
    "What is depicted in the image?",
    "Give a description of this picture.",
)


@dataclass(frozen=True)
class Example:
    """One prompt with its answer and (for evaluation) its paraphrase and wrong alternatives."""

    id: str
    set: str
    kind: str  # qa | caption | face_name | multiple_choice
    question: str
    answer: str
    image: Any = None  # PIL image or None for text rows
    paraphrased: str | None = None
    perturbed: tuple[str, ...] = ()
    # multiple choice: whether the dataset listed the answer among the options (paper mode never scores it
    # twice; reference_compat scores every listed option, as the authors did)
    answer_listed: bool = False

    @property
    def modality(self) -> str:
        return "text" if self.image is None else "visual"


def stable_choice(options: Sequence[str], *keys: object) -> str:
    """A choice that depends only on the keys (never on PYTHONHASHSEED or call order)."""
    digest = hashlib.sha256("|".join(map(str, keys)).encode()).digest()
    return options[int.from_bytes(digest[:8], "little") % len(options)]


def caption_question(example_id: str, seed: int) -> str:
    return stable_choice(CAPTION_QUESTIONS, "caption", seed, example_id)


IMAGE_TASKS = ("caption", "face_name")


def training_examples(
    source: SnapshotSource,
    config: str,
    seed: int,
    set_name: str = "train",
    image_tasks: Sequence[str] = ("caption",),
) -> list[Example]:
    """Rows of a `<split>+tofu` config: text rows become QA, image rows captions; with `face_name` in
    `image_tasks` the image rows of `<split>` (which carry `name`) also become recognition examples
    ("The name of the person on the image is" → name, the authors' recognition mode)."""
    unknown = set(image_tasks) - set(IMAGE_TASKS)
    if unknown:
        from ..errors import ClearConfigError

        raise ClearConfigError(
            f"unknown image task(s) {sorted(unknown)}", f"use data.image_tasks from {IMAGE_TASKS}"
        )
    out = []
    for i, row in enumerate(source.load("clear", config)):
        eid = f"{config}/{i}"
        if row["image"] is None:
            out.append(Example(eid, set_name, "qa", row["question"], row["answer"]))
        elif "caption" in image_tasks:
            out.append(
                Example(eid, set_name, "caption", caption_question(eid, seed), row["caption"], row["image"])
            )
    if "face_name" in image_tasks:
        plain = config.removesuffix("+tofu")
        for i, row in enumerate(source.load("clear", plain)):
            out.append(
                Example(
                    f"{plain}/{i}/name", set_name, "face_name", FACE_NAME_PROMPT, row["name"], row["image"]
                )
            )
    return out


def prior_examples(source: SnapshotSource) -> list[Example]:
    """The tiny model's 'pre-training' knowledge: celebrity faces, visual questions, world facts."""
    out = []
    for config in PRIOR_CONFIGS:
        for i, row in enumerate(source.load("prior", config)):
            kind = "face_name" if config == "faces" else "qa"
            out.append(
                Example(
                    f"prior/{config}/{i}", "prior", kind, row["question"], row["answer"], row.get("image")
                )
            )
    return out


def _without(answer: str, options: Sequence[str]) -> tuple[str, ...]:
    """Wrong options only: the correct answer is never counted twice (SPEC §2)."""
    return tuple(o for o in options if o.strip() != answer.strip())


def _listed(answer: str, options: Sequence[str]) -> bool:
    return any(o.strip() == answer.strip() for o in options)


REAL_WORLD_COLUMNS = ("prompt", "question")


def eval_examples(
    source: SnapshotSource, set_name: str, split: str, seed: int, real_world_column: str = "prompt"
) -> list[Example]:
    """The items of one evaluation set (SPEC §6), e.g. `forget_qa` for split `forget10`.

    `real_world_column`: `prompt` (question + lettered options, paper mode) or `question` (the authors' code).
    """
    if real_world_column not in REAL_WORLD_COLUMNS:
        from ..errors import ClearConfigError

        raise ClearConfigError(
            f"unknown eval.real_world_column '{real_world_column}'",
            f"use one of {', '.join(REAL_WORLD_COLUMNS)}",
        )
    group, _, task = set_name.partition("_")
    perturbed_config = f"{split}_perturbed" if group == "forget" else "retain_perturbed"
    if group in ("forget", "retain") and task == "qa":
        rows = source.load("tofu", perturbed_config)
        return [
            Example(
                f"{set_name}/{i}",
                set_name,
                "qa",
                r["question"],
                r["answer"],
                None,
                r["paraphrased_answer"],
                tuple(r["perturbed_answer"]),
            )
            for i, r in enumerate(rows)
        ]
    if group in ("forget", "retain") and task == "caption":
        rows = source.load("clear", perturbed_config)
        return [
            Example(
                f"{set_name}/{i}",
                set_name,
                "caption",
                caption_question(f"{set_name}/{i}", seed),
                r["caption"],
                r["image"],
                r["paraphrased_caption"],
                tuple(r["perturbed_captions"]),
            )
            for i, r in enumerate(rows)
        ]
    if group in ("forget", "retain") and task == "face_name":
        rows = source.load("clear", perturbed_config)
        return [
            Example(
                f"{set_name}/{i}",
                set_name,
                "face_name",
                FACE_NAME_PROMPT,
                r["name"],
                r["image"],
                None,
                _without(r["name"], r["perturbed_names"]),
                _listed(r["name"], r["perturbed_names"]),
            )
            for i, r in enumerate(rows)
        ]
    if set_name == "real_faces":
        rows = source.load("clear", "real_faces")
        return [
            Example(
                f"{set_name}/{i}",
                set_name,
                "multiple_choice",
                FACE_NAME_PROMPT,
                r["answer"],
                r["image"],
                None,
                _without(r["answer"], r["options"]),
                _listed(r["answer"], r["options"]),
            )
            for i, r in enumerate(rows)
        ]
    if set_name == "real_world":
        rows = source.load("clear", "real_world")
        return [
            Example(
                f"{set_name}/{i}",
                set_name,
                "multiple_choice",
                r[real_world_column],
                r["answer"],
                r["image"],
                None,
                _without(r["answer"], r["options"]),
                _listed(r["answer"], r["options"]),
            )
            for i, r in enumerate(rows)
        ]
    if set_name in ("real_authors", "world_facts"):
        rows = source.load("tofu", f"{set_name}_perturbed")
        return [
            Example(
                f"{set_name}/{i}",
                set_name,
                "multiple_choice",
                r["question"],
                r["answer"],
                None,
                None,
                _without(r["answer"], r["perturbed_answer"]),
                _listed(r["answer"], r["perturbed_answer"]),
            )
            for i, r in enumerate(rows)
        ]
    from ..errors import ClearConfigError

    raise ClearConfigError(
        f"unknown evaluation set '{set_name}'",
        "use forget_/retain_ + qa|caption|face_name, real_faces, real_world, real_authors or world_facts",
    )


def is_visual_set(set_name: str) -> bool:
    """Whether an evaluation set's items carry images (known from its name, before loading any data)."""
    return set_name in ("real_faces", "real_world") or set_name.partition("_")[2] in IMAGE_TASKS


def with_answer(example: Example, answer: str, set_name: str) -> Example:
    """The same prompt with another target, e.g. an IDK answer for a forget question."""
    return replace(example, answer=answer, set=set_name, paraphrased=None, perturbed=())


def corpus(source: SnapshotSource, extra: Sequence[str] = ()) -> list[str]:
    """Every string the model will read or write, for training the tiny model's tokenizer."""
    texts = list(extra) + list(CAPTION_QUESTIONS) + [FACE_NAME_PROMPT]
    text_columns = (
        "caption",
        "name",
        "question",
        "answer",
        "paraphrased_caption",
        "paraphrased_answer",
        "prompt",
    )
    list_columns = ("perturbed_captions", "perturbed_names", "perturbed_answer", "options")
    for collection, schema in (("clear", CLEAR_CONFIGS), ("tofu", TOFU_CONFIGS), ("prior", PRIOR_CONFIGS)):
        if collection == "prior" and not source.has_prior:
            continue
        for config in schema:
            ds = source.load(collection, config)
            for col in text_columns:
                if col in ds.column_names:
                    texts += [t for t in ds[col] if t]
            for col in list_columns:
                if col in ds.column_names:
                    texts += [t for opts in ds[col] for t in opts]
    return texts


CLEAR_CONFIGS = ("full+tofu", "forget10_perturbed", "retain_perturbed", "real_faces", "real_world")
TOFU_CONFIGS = ("forget10_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")
PRIOR_CONFIGS = ("faces", "looks", "world", "facts")
