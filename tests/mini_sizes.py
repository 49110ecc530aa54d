"""Small CLEAR-mini builds for the data tests: the world around the persons kept minimal (a few celebrities, real
questions and prior rows), each test choosing its persons and what it counts."""

from __future__ import annotations

from typing import Any

from clear_lightning.data.mini_config import ClearMiniConfig

SMALL_WORLD = dict(
    images_per_person=2,
    num_celebrities=3,
    num_real_world=4,
    prior_images_per_celebrity=1,
    num_prior_world=4,
)


def small_clear_mini(**sizes: Any) -> ClearMiniConfig:
    """`SMALL_WORLD` with the test's own sizes on top."""
    return ClearMiniConfig(**{**SMALL_WORLD, **sizes})
