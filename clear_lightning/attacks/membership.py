"""Membership inference (benchmark.md §10): can an attacker tell the forget persons' items (trained on, then
unlearned) from holdout persons' items (never trained on) by the model's likelihood? Gold never saw either, so
its AUC is the floor; MUSE's privacy leakage is how far the unlearned model's AUC sits from gold's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..data.batching import EncodedDataset, RowCollator
from ..data.encoding import image_inputs
from ..data.examples import Example
from .base import LABELS, Attack, AttackContext, Records, Subject
from .mia import SCORES, auc, privacy_leakage, token_statistics


def member_scores(
    model: torch.nn.Module, encoder: Any, rows: Sequence[Example], batch_size: int = 16
) -> list[dict[str, Any]]:
    """Per row: its id, person, kind and every score of `mia.SCORES` (higher = less likely a member)."""
    model.eval()
    out: list[dict[str, Any]] = []
    # text and image rows apart: a mixed batch would pad text rows to the image rows' length
    for modality in ("text", "visual"):
        part = [r for r in rows if r.modality == modality]
        loader = DataLoader(
            EncodedDataset(part, encoder), batch_size=batch_size, collate_fn=RowCollator(encoder.pad_id)
        )
        start = 0
        for batch in loader:
            with torch.no_grad():
                logits = model(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    **image_inputs(batch),
                ).logits
            for row, stats in zip(
                part[start : start + len(logits)], token_statistics(logits, batch["labels"]), strict=True
            ):
                scores = {
                    name: (fn(stats, row.answer) if name == "zlib" else fn(stats))
                    for name, fn in SCORES.items()
                }
                out.append({"id": row.id, "person": row.person, "kind": row.kind, **scores})
            start += len(logits)
    return out


class MembershipInference(Attack):
    """LOSS, zlib, Min-K % and Min-K %++ scores of every forget row (members) and holdout row (non-members);
    the AUC per score for the unlearned model, gold and the original, and the privacy leakage."""

    kind = "mia"
    description = "LOSS, zlib, Min-K% and Min-K%++ AUC of forget (members) vs holdout (non-members) persons"

    def __init__(self, batch_size: int = 16):
        self.batch_size = int(batch_size)

    def run(self, ctx: AttackContext, subject: Subject) -> dict[str, Records]:
        if ctx.encode is None:
            raise RuntimeError("membership inference needs the pipeline's encoder")
        members, nonmembers = ctx.forget_rows(), ctx.holdout_rows()
        model, processor = subject.load()
        encoder = ctx.encode(processor)
        ctx.say(f"mia: {subject.label} on {len(members)} forget and {len(nonmembers)} holdout rows")
        return {
            "default": {
                "member": member_scores(model, encoder, members, self.batch_size),
                "nonmember": member_scores(model, encoder, nonmembers, self.batch_size),
            }
        }

    def score(self, ctx: AttackContext, results: Mapping[str, Mapping[str, Records]]) -> dict[str, Any]:
        scores: dict[str, Any] = {}
        for name in SCORES:
            aucs = {
                lab: auc(
                    [r[name] for r in results[lab]["default"]["member"]],
                    [r[name] for r in results[lab]["default"]["nonmember"]],
                )
                for lab in LABELS
            }
            scores[name] = {"auc": aucs, "privacy_leakage": privacy_leakage(aucs["unlearned"], aucs["gold"])}
        return {
            "kind": self.kind,
            "description": self.description,
            "scores": scores,
            "residual_forget": None,
        }

    def spec(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}
