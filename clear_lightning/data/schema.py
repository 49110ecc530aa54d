"""The on-disk contract of CLEAR and TOFU (SPEC §2): config names and their columns, checked on load.

Holdout configs (persons never trained on, SPEC §1/§10) are *optional*: `validate` never requires them, but
checks their columns where a snapshot has them. TOFU's own `holdout01/05/10` list question and answer (what
OpenUnlearning reads for its membership-inference metrics). `holdoutNN_perturbed` in TOFU (the columns of
`forgetNN_perturbed`, for truth ratios) and in CLEAR (the columns of `forgetNN_perturbed`, images with captions
and names) are CLEAR-mini's additions: the real therem/CLEAR has no holdout persons.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ClearConfigError

_IMAGE = ("image", "caption", "name")
_MIXED = ("image", "caption", "question", "answer")
_PERTURBED_IMAGE = _IMAGE + ("paraphrased_caption", "perturbed_captions", "perturbed_names")
_PERTURBED_QA = ("question", "answer", "paraphrased_answer", "perturbed_answer")
_SPLITS = ("forget01", "forget05", "forget10", "retain99", "retain95", "retain90")
HOLDOUT_SPLITS = ("holdout01", "holdout05", "holdout10")  # sized like forget01/05/10

CLEAR_SCHEMA: dict[str, tuple[str, ...]] = {
    "full": _IMAGE,
    **{s: _IMAGE for s in _SPLITS},
    "full+tofu": _MIXED,
    **{f"{s}+tofu": _MIXED for s in _SPLITS},
    **{f"{s}_perturbed": _PERTURBED_IMAGE for s in ("forget01", "forget05", "forget10", "retain")},
    "real_faces": ("image", "answer", "options"),
    "real_world": ("image", "question", "answer", "prompt", "options"),
    **{f"{s}_perturbed": _PERTURBED_IMAGE for s in HOLDOUT_SPLITS},  # optional, CLEAR-mini only
}

TOFU_SCHEMA: dict[str, tuple[str, ...]] = {
    "full": ("question", "answer"),
    **{s: ("question", "answer") for s in _SPLITS},
    **{
        f"{s}_perturbed": _PERTURBED_QA
        for s in ("forget01", "forget05", "forget10", "retain", "real_authors", "world_facts")
    },
    **{s: ("question", "answer") for s in HOLDOUT_SPLITS},  # optional: TOFU's holdout authors
    **{f"{s}_perturbed": _PERTURBED_QA for s in HOLDOUT_SPLITS},  # optional, CLEAR-mini's addition
}

PRIOR_SCHEMA: dict[str, tuple[str, ...]] = {
    "faces": ("image", "answer", "question"),
    "world": ("image", "question", "answer"),
    "facts": ("question", "answer"),
    "looks": ("image", "question", "answer"),
}

SCHEMAS = {"clear": CLEAR_SCHEMA, "tofu": TOFU_SCHEMA, "prior": PRIOR_SCHEMA}

# Configs a snapshot may lack: `validate` skips them when absent (their columns are checked when present).
OPTIONAL_CONFIGS: dict[str, frozenset[str]] = {
    "clear": frozenset(f"{s}_perturbed" for s in HOLDOUT_SPLITS),
    "tofu": frozenset((*HOLDOUT_SPLITS, *(f"{s}_perturbed" for s in HOLDOUT_SPLITS))),
    "prior": frozenset(),
}


def is_optional(collection: str, config: str) -> bool:
    """Whether SPEC §2 lets a snapshot of `collection` lack `config` (the holdout configs)."""
    return config in OPTIONAL_CONFIGS.get(collection, frozenset())


def holdout_config(split: str) -> str:
    """`holdout10` for `forget10`: the holdout persons of the forget set's size."""
    return "holdout" + split.removeprefix("forget")


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
