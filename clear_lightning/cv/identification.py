"""Enrolment, identification by cosine and the membership-attack logit (benchmark.md §8, paper appendix E)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

_CLIP = 1e-6  # keeps the logit finite: c = 0 (cos ≤ 0) or c = 1 would give ∓∞


def enrol(embeddings: Tensor, labels: Tensor, num_persons: int, n: int = 5) -> tuple[Tensor, Tensor]:
    """Each person's enrolment vector: the L2-normalised mean of their first n embeddings.

    Returns (vectors (P, D), enrolled mask (N,) marking the rows used, which are then not probed).
    """
    used = torch.zeros(len(labels), dtype=torch.bool)
    vectors = torch.zeros(num_persons, embeddings.shape[-1], dtype=embeddings.dtype)
    for p in range(num_persons):
        rows = (labels == p).nonzero().flatten()[:n]
        if len(rows) == 0:
            raise ValueError(f"person {p} has no image to enrol")
        used[rows] = True
        vectors[p] = embeddings[rows].mean(0)
    return F.normalize(vectors, dim=-1), used


def identify(embeddings: Tensor, gallery: Tensor) -> tuple[Tensor, Tensor]:
    """(predicted person = argmax cosine over the gallery, the cosine matrix (N, P))."""
    cos = F.normalize(embeddings, dim=-1) @ F.normalize(gallery, dim=-1).T
    return cos.argmax(-1), cos


def attack_logit(cos_to_own: Tensor) -> Tensor:
    """ℓ = log(c / (1 − c)), c = max(0, cos(v, v_enrol)) (benchmark.md §8), clipped to stay finite."""
    c = cos_to_own.clamp(min=0.0).clamp(_CLIP, 1 - _CLIP)
    return torch.log(c) - torch.log1p(-c)


@dataclass
class Probes:
    """Per probe image (the images not used for enrolment): its person, correctness and attack logit."""

    person: Tensor
    correct: Tensor
    logit: Tensor

    def accuracy(self, persons: list[int] | tuple[int, ...]) -> float:
        """Identification accuracy over the probes of a group of persons."""
        mask = torch.isin(self.person, torch.tensor(list(persons), dtype=self.person.dtype))
        if not mask.any():
            raise ValueError("no probe images for this group")
        return float(self.correct[mask].float().mean())


def probe(embeddings: Tensor, labels: Tensor, num_persons: int, n_enrol: int = 5) -> Probes:
    """Enrol every person, then identify each remaining image among all persons."""
    gallery, used = enrol(embeddings, labels, num_persons, n_enrol)
    predicted, cos = identify(embeddings[~used], gallery)
    person = labels[~used]
    own = cos.gather(1, person[:, None]).squeeze(1)
    return Probes(person, predicted == person, attack_logit(own))
