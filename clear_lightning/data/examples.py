"""Example rows: every CLEAR/TOFU table row becomes one `Example`, the unit the pipeline trains and scores on."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..contract import (
    CAPTION_QUESTIONS,
    CLEAR,
    EVAL_SETS,
    FACE_NAME_PROMPT,
    IMAGE_TASKS,
    PRIOR,
    PRIOR_CONFIGS,
    PROMPT,
    QUESTION,
    TEXT,
    TOFU,
    TOFU_SUFFIX,
    VISUAL,
    EvalSet,
    holdout_config,
    perturbed,
)
from ..errors import ClearConfigError
from .source import SnapshotSource


@dataclass(frozen=True)
class Example:
    """One prompt with its answer and (for evaluation) its paraphrase and wrong alternatives."""

    id: str
    set: str
    kind: str  # qa | caption | face_name | face_qa | multiple_choice
    question: str
    answer: str
    image: Any = None  # PIL image or None for text rows
    paraphrased: str | None = None
    perturbed: tuple[str, ...] = ()
    # multiple choice: whether the dataset listed the answer among the options (paper mode never scores it
    # twice; reference_compat scores every listed option, as the authors did)
    answer_listed: bool = False
    # the unit a person-level bootstrap resamples: for forget/retain/holdout sets the person (the same id in the
    # group's QA, caption and face-name sets), for real_faces the celebrity, for other sets the item itself
    person: str | None = None

    @property
    def modality(self) -> str:
        return "text" if self.image is None else "visual"


def stable_choice(options: Sequence[str], *keys: object) -> str:
    """A choice that depends only on the keys (never on PYTHONHASHSEED or call order)."""
    digest = hashlib.sha256("|".join(map(str, keys)).encode()).digest()
    return options[int.from_bytes(digest[:8], "little") % len(options)]


def caption_question(example_id: str, seed: int) -> str:
    return stable_choice(CAPTION_QUESTIONS, "caption", seed, example_id)


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
        raise ClearConfigError(
            f"unknown image task(s) {sorted(unknown)}", f"use data.image_tasks from {IMAGE_TASKS}"
        )
    out = []
    for i, row in enumerate(source.load(CLEAR, config)):
        eid = f"{config}/{i}"
        if row["image"] is None:
            out.append(Example(eid, set_name, "qa", row["question"], row["answer"]))
        elif "caption" in image_tasks:
            out.append(
                Example(eid, set_name, "caption", caption_question(eid, seed), row["caption"], row["image"])
            )
    if "face_name" in image_tasks:
        plain = config.removesuffix(TOFU_SUFFIX)
        for i, row in enumerate(source.load(CLEAR, plain)):
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
        for i, row in enumerate(source.load(PRIOR, config)):
            kind = "face_name" if config == "faces" else "qa"
            out.append(
                Example(
                    f"prior/{config}/{i}", "prior", kind, row["question"], row["answer"], row.get("image")
                )
            )
    return out


def _without(answer: str, options: Sequence[str]) -> tuple[str, ...]:
    """Wrong options only: the correct answer is never counted twice (benchmark.md §2)."""
    return tuple(o for o in options if o.strip() != answer.strip())


def _listed(answer: str, options: Sequence[str]) -> bool:
    return any(o.strip() == answer.strip() for o in options)


REAL_WORLD_COLUMNS = (PROMPT, QUESTION)  # what eval.real_world_column may ask of real_world


class SetUnavailableError(ClearConfigError):
    """An optional evaluation set the data source cannot provide (e.g. holdout persons in the real CLEAR);
    the data module skips such a set and records why (`CLEARDataModule.skipped_sets`)."""


def person_of_qa_row(group: str, row: int, qa_per_person: int) -> str:
    """TOFU rows carry no name: a config lists its persons' QA in consecutive blocks of `qa_per_person` rows."""
    return f"{group}/{row // qa_per_person}"


def persons_of_names(group: str, names: Sequence[str]) -> list[str]:
    """Image rows carry a name: the k-th distinct name (in order of first appearance) is the config's k-th
    person, the same k as its k-th block of TOFU QA rows. CLEAR-mini writes both in one person order (tested).
    For the real data this is an assumption, not checked here: therem/CLEAR's `<split>_perturbed` lists the same
    persons as TOFU's config of that name, in TOFU's order, with no person missing (rows may be)."""
    order: dict[str, int] = {}
    return [f"{group}/{order.setdefault(n, len(order))}" for n in names]


def has_config(source: SnapshotSource, collection: str, config: str) -> bool:
    """Whether an optional config is there; one that cannot be read (e.g. not cached while offline) makes the
    set unavailable rather than failing the evaluation of every other set."""
    try:
        return source.has_config(collection, config)
    except SetUnavailableError:
        raise
    except ClearConfigError as err:
        raise SetUnavailableError(
            f"{collection} config '{config}' cannot be read: {err.problem}", err.fix
        ) from err


def _holdout_qa_rows(source: SnapshotSource, split: str) -> Any:
    """TOFU QA of the holdout persons with paraphrased and perturbed answers (needed for the truth ratio):
    `holdoutNN_perturbed` (CLEAR-mini's addition) or TOFU's `holdoutNN` where it has those columns."""
    holdout = holdout_config(split)
    if has_config(source, TOFU, perturbed(holdout)):
        return source.load(TOFU, perturbed(holdout))
    if has_config(source, TOFU, holdout):
        rows = source.load(TOFU, holdout)
        if {"paraphrased_answer", "perturbed_answer"} <= set(rows.column_names):
            return rows
        raise SetUnavailableError(
            f"TOFU's {holdout} has question and answer only: no paraphrased / perturbed answers to score a truth "
            f"ratio ({holdout}_perturbed, CLEAR-mini's addition, is absent); CLEARDataModule.holdout_examples() "
            "still gives its QA for membership inference",
            f"add a {holdout}_perturbed config (question, answer, paraphrased_answer, perturbed_answer) to the "
            "TOFU snapshot, or drop holdout_qa from eval.sets",
        )
    raise SetUnavailableError(
        f"the TOFU snapshot has no holdout persons (no {holdout} / {holdout}_perturbed config)",
        "use a TOFU revision with its holdout01/05/10 configs, or drop holdout_qa from eval.sets",
    )


def _holdout_image_rows(source: SnapshotSource, split: str) -> Any:
    config = perturbed(holdout_config(split))
    if has_config(source, CLEAR, config):
        return source.load(CLEAR, config)
    raise SetUnavailableError(
        f"the CLEAR snapshot has no holdout persons (no {config} config: therem/CLEAR has none, "
        "CLEAR-mini adds them)",
        "drop holdout_caption / holdout_face_name from eval.sets, or use data=clear_mini",
    )


def unavailable_reason(source: SnapshotSource, set_name: str, split: str) -> str | None:
    """Why the source cannot provide an (optional) evaluation set, or None if it can; reads the holdout
    configs' tables (memory-mapped Arrow) but decodes no image."""
    spec = EVAL_SETS.get(set_name)
    if spec is None or spec.group != "holdout":
        return None
    try:
        _holdout_rows(source, spec, split)
    except SetUnavailableError as err:
        return err.problem
    return None


def eval_examples(
    source: SnapshotSource, set_name: str, split: str, seed: int, real_world_column: str = "prompt"
) -> list[Example]:
    """The items of one evaluation set (benchmark.md §6), e.g. `forget_qa` for split `forget10`.

    `real_world_column`: `prompt` (question + lettered options, paper mode) or `question` (the authors' code).
    `holdout_<task>` sets hold the persons of `holdoutNN` (NN of the split, like the forget set); a source
    without them raises `SetUnavailableError`.
    """
    if real_world_column not in REAL_WORLD_COLUMNS:
        raise ClearConfigError(
            f"unknown eval.real_world_column '{real_world_column}'",
            f"use one of {', '.join(REAL_WORLD_COLUMNS)}",
        )
    spec = _eval_set(set_name)
    if spec.kind == "face_qa":  # composed from a QA config and an image config (the module imports this one)
        from .face_qa import face_qa_examples

        return face_qa_examples(source, spec, split)
    if spec.group == "holdout":
        rows = _holdout_rows(source, spec, split)
    else:
        rows = source.load(spec.collection, spec.config_for(split))
    if spec.kind == "qa":
        per_person = source.qa_per_person
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
                person=person_of_qa_row(spec.group, i, per_person),
            )
            for i, r in enumerate(rows)
        ]
    if spec.kind == "caption":
        persons = persons_of_names(spec.group, rows["name"])
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
                person=persons[i],
            )
            for i, r in enumerate(rows)
        ]
    if spec.kind == "face_name":
        persons = persons_of_names(spec.group, rows["name"])
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
                person=persons[i],
            )
            for i, r in enumerate(rows)
        ]
    # multiple choice: the prompt column (real_world's `prompt` as eval.real_world_column says), the options
    column = real_world_column if spec.prompt_column == PROMPT else spec.prompt_column
    return [
        Example(
            f"{set_name}/{i}",
            set_name,
            "multiple_choice",
            FACE_NAME_PROMPT if column is None else r[column],
            r["answer"],
            r["image"] if spec.modality == VISUAL else None,
            None,
            _without(r["answer"], r[spec.options_column]),
            _listed(r["answer"], r[spec.options_column]),
            # real_faces: the celebrity; real_world, real_authors, world_facts: each item its own unit
            person=r["answer"] if spec.unit == "answer" else f"{set_name}/{i}",
        )
        for i, r in enumerate(rows)
    ]


def _eval_set(set_name: str) -> EvalSet:
    """The contract's entry for an evaluation set, or a ClearConfigError naming the known sets."""
    spec = EVAL_SETS.get(set_name)
    if spec is None:
        raise ClearConfigError(
            f"unknown evaluation set '{set_name}'",
            f"use one of {', '.join(EVAL_SETS)}",
        )
    return spec


def _holdout_rows(source: SnapshotSource, spec: EvalSet, split: str) -> Any:
    """The rows of a holdout set (QA or images), or SetUnavailableError when the source has no holdout persons."""
    if spec.modality == TEXT:
        return _holdout_qa_rows(source, split)
    return _holdout_image_rows(source, split)


def holdout_examples(
    source: SnapshotSource, split: str, seed: int, image_tasks: Sequence[str] = ("caption",)
) -> list[Example]:
    """The holdout persons of the split's size as plain (prompt, answer) rows, like the forget rows of a
    `+tofu` config: TOFU's `holdoutNN` QA and, where the CLEAR snapshot has holdout persons (CLEAR-mini), their
    images as captions (and face-name rows with `face_name` in `image_tasks`). Never trained on: this is the
    "non-member" side of membership inference (benchmark.md §10). Raises `SetUnavailableError` if there is none."""
    holdout = holdout_config(split)
    out: list[Example] = []
    if has_config(source, TOFU, holdout):
        config = holdout
    elif has_config(source, TOFU, perturbed(holdout)):
        config = perturbed(holdout)
    else:
        config = None
    if config is not None:
        for i, r in enumerate(source.load(TOFU, config)):
            out.append(
                Example(
                    f"{config}/{i}",
                    "holdout",
                    "qa",
                    r["question"],
                    r["answer"],
                    person=person_of_qa_row("holdout", i, source.qa_per_person),
                )
            )
    image_config = perturbed(holdout)
    if has_config(source, CLEAR, image_config):
        rows = source.load(CLEAR, image_config)
        persons = persons_of_names("holdout", rows["name"])
        for i, r in enumerate(rows):
            eid = f"{image_config}/{i}"
            if "caption" in image_tasks:
                question = caption_question(eid, seed)
                out.append(
                    Example(eid, "holdout", "caption", question, r["caption"], r["image"], person=persons[i])
                )
            if "face_name" in image_tasks:
                out.append(
                    Example(
                        f"{eid}/name",
                        "holdout",
                        "face_name",
                        FACE_NAME_PROMPT,
                        r["name"],
                        r["image"],
                        person=persons[i],
                    )
                )
    if not out:
        raise SetUnavailableError(
            f"the data has no holdout persons for split {split} (no TOFU {holdout} or CLEAR {image_config})",
            "use data=clear_mini (which generates holdout persons) or a TOFU revision with holdout configs",
        )
    return out


def is_visual_set(set_name: str) -> bool:
    """Whether an evaluation set's items carry images (from the contract's table, before loading any data);
    False for a name that is no evaluation set (`eval_examples` reports those)."""
    spec = EVAL_SETS.get(set_name)
    return spec is not None and spec.modality == VISUAL


def with_answer(example: Example, answer: str, set_name: str) -> Example:
    """The same prompt with another target, e.g. an IDK answer for a forget question."""
    return replace(example, answer=answer, set=set_name, paraphrased=None, perturbed=())
