"""Small CLEAR-mini builds for the data tests: the world around the persons kept minimal (a few celebrities, real
questions and prior rows), each test choosing its persons and what it counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasets
import pytest

from clear_lightning.data.clear_mini import generate_clear_mini
from clear_lightning.data.mini_config import ClearMiniConfig
from clear_lightning.data.source import SnapshotSource

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


@contextmanager
def generated_source(root: Path, config: ClearMiniConfig) -> Iterator[SnapshotSource]:
    """A CLEAR-mini build of `config` under root, read through a datasets cache of its own, offline."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", root / "hf_cache")
        mp.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
        out = generate_clear_mini(root / "data", config)
        yield SnapshotSource(
            "mini", str(out["clear"]), str(out["tofu"]), str(out["prior"]), qa_per_person=config.qa_per_person
        )
