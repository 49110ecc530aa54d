"""Rephrasing (FIUBench; VLM-UnL-Attack): ask the forget questions in other words, show the forget faces
perturbed. A method that learned to refuse one phrasing or one exact image has hidden the knowledge, not removed
it; the attack scores the worst case over the variants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..contract import CAPTION_QUESTIONS
from ..data.examples import Example
from .base import Attack, AttackContext, Records, Subject, Transform
from .variants import PERTURBATIONS, other_caption_questions, perturb_image, rewrite_question, variant_seed


class Rephrase(Attack):
    """Variants: `question:<rewrite>` (model-free rewrites of every forget QA question), `caption_question:<k>`
    (the k-th caption question the image was not asked in training) and `image:<perturbation>` (noise, blur,
    crop, brightness, occlusion, seeded per item). Each variant re-evaluates every forget set, changing only the
    items it applies to, so the forget metric of every variant is comparable with the plain evaluation's."""

    kind = "rephrase"
    description = (
        "other phrasings of the forget questions and perturbed forget images; worst case over variants"
    )

    def __init__(
        self,
        rewrites: Sequence[str] = ("formal", "embedded", "answer_first"),
        caption_questions: int = 2,
        perturbations: Sequence[str] = PERTURBATIONS,
        strength: float = 1.0,
    ):
        unknown = [p for p in perturbations if p not in PERTURBATIONS]
        if unknown:
            raise ValueError(f"rephrase perturbations {unknown}: use any of {', '.join(PERTURBATIONS)}")
        for rewrite in rewrites:
            rewrite_question("What is it?", rewrite)  # an unknown rewrite fails here, naming the valid ones
        if int(caption_questions) < 0:
            raise ValueError(f"rephrase caption_questions={caption_questions}: use 0 or more")
        self.rewrites, self.caption_questions = list(rewrites), int(caption_questions)
        self.perturbations, self.strength = list(perturbations), float(strength)

    def variants(self) -> list[str]:
        return (
            [f"question:{r}" for r in self.rewrites]
            + [f"caption_question:{k}" for k in range(1, self.caption_questions + 1)]
            + [f"image:{p}" for p in self.perturbations]
        )

    def transform(self, variant: str, seed: int) -> Transform:
        """The item transform of one variant: (set name, items) -> the items to score."""
        kind, _, arg = variant.partition(":")

        def apply(name: str, items: list[Example]) -> list[Example]:
            out = []
            for item in items:
                if kind == "question" and item.kind == "qa":
                    item = replace(item, question=rewrite_question(item.question, arg))
                elif kind == "caption_question" and item.kind == "caption":
                    others = other_caption_questions(item.question, CAPTION_QUESTIONS)
                    item = replace(item, question=others[(int(arg) - 1) % len(others)])
                elif kind == "image" and item.image is not None:
                    item = replace(
                        item, image=perturb_image(item.image, arg, variant_seed(seed, arg, item.id))
                    )
                out.append(item)
            return out

        return apply

    def run(self, ctx: AttackContext, subject: Subject) -> dict[str, Records]:
        model, processor = subject.load()
        out = {}
        for variant in self.variants():
            ctx.say(f"rephrase: {subject.label}, {variant}")
            out[variant] = ctx.evaluate(
                model, processor, list(ctx.forget_sets), self.transform(variant, ctx.seed)
            )
        return out

    def spec(self) -> dict[str, Any]:
        return {
            "rewrites": self.rewrites,
            "caption_questions": self.caption_questions,
            "perturbations": self.perturbations,
            "strength": self.strength,
        }
