"""Which persons each of the N models trains on, unlearns and never sees (paper appendix E).

Model i trains on a random half of the pool (the persons outside the fixed forget set) plus k more persons,
then unlearns those k: for even i they are the fixed forget persons ("in"), for odd i k other pool persons
("out"), so half of the models have trained on (and unlearned) the forget persons and half never saw them.
Gold retrains on the half only, so its "in" and "out" models are identically distributed: 0.5 by construction.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ClearConfigError


@dataclass(frozen=True)
class ModelPlan:
    index: int
    member: bool  # trained on (and then unlearned) the fixed forget persons
    retain: tuple[int, ...]
    forget: tuple[int, ...]  # what this model trains on and then unlearns
    holdout: tuple[int, ...]  # k persons this model never sees (the fixed forget set when not a member)

    @property
    def train(self) -> tuple[int, ...]:
        """The original model's persons, in head-slot order: retain first, then forget."""
        return self.retain + self.forget

    def key(self) -> dict[str, Any]:
        return asdict(self)


def plan_models(num_persons: int, forget: list[int], num_models: int, seed: int) -> list[ModelPlan]:
    """Seeded per model index, so model i's plan does not depend on N (a larger N only adds models)."""
    k = len(forget)
    pool = [p for p in range(num_persons) if p not in set(forget)]
    half = len(pool) // 2
    if k == 0 or half < 1 or len(pool) - half < k:
        raise ClearConfigError(
            f"{num_persons} persons with {k} forget persons leave no room for retain and holdout groups",
            "use more persons (data.persons.source.num_persons) so that half the rest still holds k holdout persons",
        )
    if num_models < 4 or num_models % 2:
        raise ClearConfigError(
            f"protocol.num_models={num_models}", "use an even number >= 4 (half in, half out, plus shadows)"
        )
    plans = []
    for i in range(num_models):
        rng = random.Random(f"cv-protocol/{seed}/{i}")
        shuffled = rng.sample(pool, len(pool))
        retain, rest = tuple(sorted(shuffled[:half])), shuffled[half:]
        others = tuple(sorted(rest[:k]))
        member = i % 2 == 0
        plans.append(
            ModelPlan(
                i, member, retain, tuple(forget) if member else others, others if member else tuple(forget)
            )
        )
    return plans
