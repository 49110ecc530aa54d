"""The on-disk contract of CLEAR and TOFU (SPEC §2): config names and their columns, checked on load."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ClearConfigError

_IMAGE = ("image", "caption", "name")
_MIXED = ("image", "caption", "question", "answer")
_PERTURBED_IMAGE = _IMAGE + ("paraphrased_caption", "perturbed_captions", "perturbed_names")
_PERTURBED_QA = ("question", "answer", "paraphrased_answer", "perturbed_answer")
_SPLITS = ("forget01", "forget05", "forget10", "retain99", "retain95", "retain90")

CLEAR_SCHEMA: dict[str, tuple[str, ...]] = {
    "full": _IMAGE,
    **{s: _IMAGE for s in _SPLITS},
    "full+tofu": _MIXED,
    **{f"{s}+tofu": _MIXED for s in _SPLITS},
    **{f"{s}_perturbed": _PERTURBED_IMAGE for s in ("forget01", "forget05", "forget10", "retain")},
    "real_faces": ("image", "answer", "options"),
    "real_world": ("image", "question", "answer", "prompt", "options"),
}

TOFU_SCHEMA: dict[str, tuple[str, ...]] = {
    "full": ("question", "answer"),
    **{s: ("question", "answer") for s in _SPLITS},
    **{
        f"{s}_perturbed": _PERTURBED_QA
        for s in ("forget01", "forget05", "forget10", "retain", "real_authors", "world_facts")
    },
}

PRIOR_SCHEMA: dict[str, tuple[str, ...]] = {
    "faces": ("image", "answer", "question"),
    "world": ("image", "question", "answer"),
    "facts": ("question", "answer"),
    "looks": ("image", "question", "answer"),
}

SCHEMAS = {"clear": CLEAR_SCHEMA, "tofu": TOFU_SCHEMA, "prior": PRIOR_SCHEMA}


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
            f"{collection} config '{config}' at {location} lacks column(s) {missing} (SPEC §2)",
            "point data.path / data.tofu_path at a complete snapshot or pin a data.revision that has them",
        )
