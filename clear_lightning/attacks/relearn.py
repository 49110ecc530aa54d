"""Relearning (Hu et al. arXiv 2406.13356; Łucki et al. arXiv 2409.18025): fine-tune on a few forget items and
ask about the others. Knowledge that was only suppressed comes back from a handful of examples; gold, which never
knew it, only learns what the leaked items themselves teach."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..data.examples import Example
from .base import Attack, AttackContext, Records, Subject


def _order(seed: int, person: str, unit: str, index: str) -> str:
    return hashlib.sha256(f"relearn|{seed}|{person}|{unit}|{index}".encode()).hexdigest()


def _unit(item: Example) -> tuple[str, str]:
    """(unit, row index): an image's caption and face-name items share their unit, so one image is leaked or
    probed as a whole (a probe image is never seen during relearning)."""
    index = item.id.rsplit("/", 1)[-1]
    return ("text" if item.image is None else "image"), index


def leak_probe(items: Sequence[Example], seed: int) -> tuple[set[str], set[str]]:
    """Split every person's items, seeded, into a leak half (rounded up) and a probe half, by (unit, row): the
    same row of two image sets (caption, face-name) lands on the same side."""
    by_person: dict[tuple[str, str], set[str]] = defaultdict(set)
    for item in items:
        unit, index = _unit(item)
        by_person[(str(item.person), unit)].add(index)
    leak_rows: set[tuple[str, str, str]] = set()
    for (person, unit), indices in by_person.items():
        ranked = sorted(indices, key=lambda i: _order(seed, person, unit, i))
        leak_rows |= {(person, unit, i) for i in ranked[: math.ceil(len(ranked) / 2)]}
    leak, probe = set(), set()
    for item in items:
        unit, index = _unit(item)
        (leak if (str(item.person), unit, index) in leak_rows else probe).add(item.id)
    return leak, probe


class Relearn(Attack):
    """Fine-tune every model on the leak half of each forget person's items (`epochs` at `lr`), then evaluate it
    on the probe half. `leak: text` is the cross-modal variant: leak the forget persons' text QA, probe their
    images (caption and face-name)."""

    kind = "relearn"
    description = "fine-tune on a leaked half of each forget person's items, probe the other half"

    def __init__(self, epochs: int = 3, lr: float = 3e-3, batch_size: int = 8, leak: str = "half"):
        if leak not in ("half", "text"):
            raise ValueError(f"relearn leak={leak!r}: use half (same modality) or text (cross-modal)")
        if int(epochs) < 1 or float(lr) <= 0 or int(batch_size) < 1:
            raise ValueError(
                f"relearn epochs={epochs}, lr={lr}, batch_size={batch_size}: use positive numbers"
            )
        self.epochs, self.lr, self.batch_size, self.leak = int(epochs), float(lr), int(batch_size), leak
        if leak == "text":
            self.description = "cross-modal: fine-tune on the forget persons' text QA, probe their images"

    def split(self, ctx: AttackContext) -> tuple[list[Example], dict[str, set[str]]]:
        """(leak rows to train on, {forget set: probe item ids})."""
        items = {name: ctx.eval_items(name) for name in ctx.forget_sets}
        if self.leak == "text":
            text = [n for n in items if all(i.image is None for i in items[n])]
            leak_rows = [i for n in text for i in items[n]]
            probe = {n: {i.id for i in items[n]} for n in items if n not in text}
            if not probe:
                raise ValueError("cross-modal relearning needs forget image sets to probe; this run has none")
            return leak_rows, probe
        leak, probe_ids = leak_probe([i for rows in items.values() for i in rows], ctx.seed)
        leak_rows = [i for rows in items.values() for i in rows if i.id in leak]
        return leak_rows, {n: {i.id for i in rows if i.id in probe_ids} for n, rows in items.items()}

    def run(self, ctx: AttackContext, subject: Subject) -> dict[str, Records]:
        leak_rows, probe = self.split(ctx)
        model, processor = subject.load()
        ctx.say(
            f"relearn{' (cross-modal)' if self.leak == 'text' else ''}: {subject.label} on {len(leak_rows)} leaked "
            f"items for {self.epochs} epochs, probing {sum(map(len, probe.values()))}"
        )
        model = ctx.fit(model, processor, leak_rows, self.epochs, self.lr, self.batch_size)

        def keep_probe(name: str, items: list[Example]) -> list[Example]:
            return [i for i in items if i.id in probe.get(name, ())]

        return {"default": ctx.evaluate(model, processor, sorted(probe), keep_probe)}

    def spec(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size, "leak": self.leak}
