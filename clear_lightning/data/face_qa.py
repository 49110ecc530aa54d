"""The cross-modal face-QA probe (issue 15, our addition to CLEAR): a person's face with one of their biography
questions asked about "the person in this image", answered with their own TOFU answer.

It asks whether what a method removed in one modality is gone from the other: a model that forgot the text
biography but still knows the face (or the reverse) can still answer it. The probe is composed at load time from
rows every snapshot has — the TOFU QA of a person set (`forget10_perturbed`, `retain_perturbed`: question, answer,
paraphrased and perturbed answers, so it is scored like the QA sets) and the CLEAR image rows of the same config
(image + name) — so CLEAR-mini and therem/CLEAR take the same code path:

- the person of a QA row is the one whose full name its question or answer contains; a row that names none of them
  (some TOFU questions describe the author instead) falls back to the config's person order (`persons_of_names`);
- every run of the person's name parts in the question becomes "the person in this image" ("this person's" for
  a possessive); a question that would still name them is dropped (and counted in the log);
- the image is one of that person's images, chosen by a stable hash of the item id (not by call order).

CLEAR-mini's QA names every person by full name in every question, so every row becomes a probe item there.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from ..contract import CLEAR, TOFU, EvalSet
from .examples import Example, persons_of_names, stable_choice
from .source import SnapshotSource

log = logging.getLogger(__name__)

REFERENCE = "the person in this image"
POSSESSIVE = "this person's"


def _name_pattern(name: str) -> re.Pattern[str]:
    """A run of the name's parts ("Ada Lovelace", "Lovelace", "Ada-Lovelace's"), case-insensitive."""
    parts = sorted({p for p in name.split() if len(p) > 1}, key=len, reverse=True) or [name.strip()]
    part = "|".join(re.escape(p) for p in parts)
    return re.compile(rf"\b(?:{part})(?:[\s-]+(?:{part}))*\b(?P<possessive>['’]s\b)?", re.IGNORECASE)


def names_person(text: str, name: str) -> bool:
    """Whether `text` contains any part of `name` as a word."""
    return _name_pattern(name).search(text) is not None


def anonymise(question: str, name: str) -> str | None:
    """The question asked about "the person in this image" instead of `name`; None if it would still name them."""
    pattern = _name_pattern(name)
    out = pattern.sub(lambda m: POSSESSIVE if m.group("possessive") else REFERENCE, question)
    if out and out[0].islower() and question[:1].isupper():
        out = out[0].upper() + out[1:]
    return None if pattern.search(out) else out


def face_qa_examples(source: SnapshotSource, spec: EvalSet, split: str) -> list[Example]:
    """The probe items of `spec` (forget_face_qa / retain_face_qa) for a forget split."""
    config = spec.config_for(split)
    images = source.load(CLEAR, config)
    names = list(images["name"])
    person_ids = dict(zip(names, persons_of_names(spec.group, names), strict=True))
    rows_of: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        rows_of.setdefault(name, []).append(i)
    ordered = list(rows_of)  # the k-th distinct name is the config's k-th person
    out: list[Example] = []
    dropped = 0
    for i, row in enumerate(source.load(TOFU, config)):
        name = _person_of(row, ordered, i // source.qa_per_person)
        question = None if name is None else anonymise(row["question"], name)
        if question is None:
            dropped += 1
            continue
        item = f"{spec.name}/{i}"
        image_row = stable_choice(rows_of[name], "face_qa", item)
        out.append(
            Example(
                item,
                spec.name,
                "face_qa",
                question,
                row["answer"],
                images[image_row]["image"],
                row["paraphrased_answer"],
                tuple(row["perturbed_answer"]),
                person=person_ids[name],
            )
        )
    if dropped:
        log.info(
            "%s: %d of %d QA rows dropped (no person's image, or the name stayed)", spec.name, dropped, i + 1
        )
    return out


def _person_of(row: dict[str, Any], names: list[str], block: int) -> str | None:
    """The person a QA row is about: the one named in full in its question or answer, else its block's person."""
    text = f"{row['question']} {row['answer']}".lower()
    named = [n for n in names if n.lower() in text]
    if len(named) == 1:
        return named[0]
    if named:  # several persons named in full: the longest name (one may contain another)
        return max(named, key=len)
    return names[block] if block < len(names) else None
