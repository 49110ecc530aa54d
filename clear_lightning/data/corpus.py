"""The tiny model's tokenizer corpus: every string the model will read or write, from the configs that together
hold all of them."""

from __future__ import annotations

from collections.abc import Sequence

from ..contract import (
    CAPTION_QUESTIONS,
    CLEAR,
    FACE_NAME_PROMPT,
    FORGET_SPLITS,
    FULL,
    HOLDOUT_SPLITS,
    LIST_COLUMNS,
    PRIOR,
    PRIOR_CONFIGS,
    REAL_AUTHORS_PERTURBED,
    REAL_FACES,
    REAL_WORLD,
    RETAIN_PERTURBED,
    TEXT_COLUMNS,
    TOFU,
    WORLD_FACTS_PERTURBED,
    perturbed,
    with_tofu,
)
from .examples import SetUnavailableError, has_config
from .source import SnapshotSource


def corpus(source: SnapshotSource, extra: Sequence[str] = ()) -> list[str]:
    """Every string the model will read or write, for training the tiny model's tokenizer."""
    texts = list(extra) + list(CAPTION_QUESTIONS) + [FACE_NAME_PROMPT]
    for collection, schema in ((CLEAR, CLEAR_CONFIGS), (TOFU, TOFU_CONFIGS), (PRIOR, PRIOR_CONFIGS)):
        if collection == PRIOR and not source.has_prior:
            continue
        optional = OPTIONAL_CORPUS_CONFIGS.get(collection, ())
        for config in (*schema, *(c for c in optional if _has_quietly(source, collection, c))):
            ds = source.load(collection, config)
            for col in TEXT_COLUMNS:
                if col in ds.column_names:
                    texts += [t for t in ds[col] if t]
            for col in LIST_COLUMNS:
                if col in ds.column_names:
                    texts += [t for opts in ds[col] for t in opts]
    return texts


def _has_quietly(source: SnapshotSource, collection: str, config: str) -> bool:
    try:
        return has_config(source, collection, config)
    except SetUnavailableError:
        return False


# the configs the tokenizer reads: together they hold every string of the data (forget10 holds every forget person)
_LARGEST_FORGET, _LARGEST_HOLDOUT = FORGET_SPLITS[-1], HOLDOUT_SPLITS[-1]
CLEAR_CONFIGS = (with_tofu(FULL), perturbed(_LARGEST_FORGET), RETAIN_PERTURBED, REAL_FACES, REAL_WORLD)
TOFU_CONFIGS = (perturbed(_LARGEST_FORGET), RETAIN_PERTURBED, REAL_AUTHORS_PERTURBED, WORLD_FACTS_PERTURBED)
# read for the tokenizer where the source has them: holdout names must tokenise like forget names, or a
# membership attack would measure the tokenizer (holdout10 holds every holdout person)
OPTIONAL_CORPUS_CONFIGS = {CLEAR: (perturbed(_LARGEST_HOLDOUT),), TOFU: (perturbed(_LARGEST_HOLDOUT),)}
