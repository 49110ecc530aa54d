"""Checking a loaded config against the on-disk contract (benchmark.md §2), whose configs and columns `contract` lists.

Holdout configs are *optional* (`contract.OPTIONAL_CONFIGS`): `validate` never requires them, but checks their
columns where a snapshot has them.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..contract import OPTIONAL_CONFIGS, SCHEMAS
from ..errors import ClearConfigError


def is_optional(collection: str, config: str) -> bool:
    """Whether benchmark.md §2 lets a snapshot of `collection` lack `config` (the holdout configs)."""
    return config in OPTIONAL_CONFIGS.get(collection, frozenset())


def missing_columns(collection: str, config: str, columns: Iterable[str]) -> list[str]:
    """Columns the contract requires for `config` that the loaded table lacks."""
    required = SCHEMAS[collection].get(config)
    if required is None:
        raise ClearConfigError(
            f"'{config}' is not a {collection} config",
            f"use one of: {', '.join(sorted(SCHEMAS[collection]))}",
        )
    have = set(columns)
    return [c for c in required if c not in have]


def check_columns(collection: str, config: str, columns: Iterable[str], location: str) -> None:
    """Fail with the list of missing columns instead of a KeyError deep inside training."""
    missing = missing_columns(collection, config, columns)
    if missing:
        raise ClearConfigError(
            f"{collection} config '{config}' at {location} lacks column(s) {missing} (benchmark.md §2)",
            "point data.path / data.tofu_path at a complete snapshot or pin a data.revision that has them",
        )
