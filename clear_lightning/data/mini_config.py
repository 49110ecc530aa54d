"""The sizes and seed of one CLEAR-mini build, and how many persons each split holds (no generator code here,
so every generator module may import it)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..contract import FORGET_PERCENTS

_MIN_IMAGE_SIZE = 16
_MAX_PERTURBED = 20  # enough wrong capitals/cities exist for the world facts


@dataclass(frozen=True)
class ClearMiniConfig:
    """Sizes and seed of one CLEAR-mini build (the defaults are the small CI size)."""

    num_persons: int = 20  # fictitious authors; 200 = full-size CLEAR-mini
    qa_per_person: int = 20
    images_per_person: int = 8
    image_size: int = 32
    num_celebrities: int = 12  # real_faces identities (separate from the persons)
    images_per_celebrity: int = 3  # in the real_faces eval config
    num_real_world: int = 48
    num_perturbed: int = 5
    prior_images_per_celebrity: int = 8  # held-out "prior knowledge" images
    num_prior_world: int = 120
    num_prior_looks: int = 150  # strangers described by appearance (vision pre-training)
    seed: int = 0
    # persons never trained on (MIA, benchmark.md §10); None = as many as forget10 has, so holdout10 matches its size
    num_holdout_persons: int | None = None

    def __post_init__(self) -> None:
        if self.num_holdout_persons is None and isinstance(self.num_persons, int):
            object.__setattr__(
                self, "num_holdout_persons", split_sizes(self.num_persons)[FORGET_PERCENTS[-1]]
            )
        validate(self)


def validate(config: ClearMiniConfig) -> None:
    """Fail early, naming the field, instead of writing a snapshot with empty or degenerate configs."""
    minimum: dict[str, int | None] = {f.name: 1 for f in fields(config)}
    minimum.update(num_persons=2, image_size=_MIN_IMAGE_SIZE, seed=None)
    for name, low in minimum.items():
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"ClearMiniConfig.{name} must be an int, got {value!r}")
        if low is not None and value < low:
            why = " (a forget and a retain person are both needed)" if name == "num_persons" else ""
            raise ValueError(f"ClearMiniConfig.{name} must be >= {low}{why}, got {value}")
    if config.num_perturbed > _MAX_PERTURBED:
        raise ValueError(
            f"ClearMiniConfig.num_perturbed must be <= {_MAX_PERTURBED}, got {config.num_perturbed}"
        )


def forget_person_count(num_persons: int, percent: int) -> int:
    """How many persons form the forget set: percent of them rounded up, at least one (as in CLEAR/TOFU)."""
    return max(1, -(-num_persons * percent // 100))


def split_sizes(num_persons: int) -> dict[int, int]:
    """Persons in forget01/05/10 (keyed 1, 5, 10): at least one, and at least one person left to retain."""
    return {p: max(1, min(num_persons - 1, forget_person_count(num_persons, p))) for p in FORGET_PERCENTS}
