"""CLEAR-mini: a seeded synthetic CLEAR (+ TOFU, + PRIOR knowledge) in the real dataset's on-disk layout.

Each snapshot directory looks like a clone of a Hugging Face dataset repo (a README.md whose YAML front matter
lists the configs, plus one parquet file per config), so the project reads it with exactly the call it uses for
the real hub snapshot: `datasets.load_dataset(str(snapshot_dir), config_name, split="train")`.
Output is byte-identical for the same config: every random choice comes from string-seeded `random.Random`
streams (one per entity), never from global state, time or `hash()`.

This module sizes the build and assembles the configs; `mini_world` invents the world and its persons,
`mini_text` and `mini_images` render their rows, `hf_snapshot` writes the directories. Config names and
columns come from `clear_lightning.contract`.

Holdout persons (`num_holdout_persons`, default the size of forget10) are generated like the others (names, facts,
QA with paraphrased and perturbed answers, face images with captions, perturbed captions and names) but are in no
`full`, `forgetNN`, `retainNN` or `+tofu` config, so no training set ever sees them. They are written as TOFU's
`holdout01/05/10` (question, answer: TOFU's own holdout configs) and, for truth ratios, as `holdoutNN_perturbed`
in TOFU (the columns of `forgetNN_perturbed`) and in CLEAR (the columns of CLEAR's `forgetNN_perturbed`); the
`_perturbed` holdout configs are our addition (the real therem/CLEAR has no holdout persons), as the READMEs say.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ..contract import (
    CLEAR,
    FORGET_PERCENTS,
    FORGET_SPLITS,
    FULL,
    PRIOR,
    REAL_AUTHORS_PERTURBED,
    REAL_FACES,
    REAL_WORLD,
    RETAIN_PERTURBED,
    RETAIN_SPLITS,
    SCHEMAS,
    TOFU,
    WORLD_FACTS_PERTURBED,
    forget_split,
    holdout_split,
    perturbed,
    retain_split,
    with_tofu,
)
from .hf_snapshot import install_snapshot, write_hf_snapshot
from .mini_config import ClearMiniConfig, split_sizes, validate
from .mini_images import celebrity_rows, look_rows, person_images, prior_world_rows, scene_rows
from .mini_text import fact_rows, person_qa
from .mini_world import attribute_pools, build_persons, build_world, stream, unique_identities

GENERATOR_VERSION = "1.4.0"

RETAIN_PERTURBED_PERSONS = 20


def split_persons(num_persons: int) -> dict[str, list[int]]:
    """Person indices per split; forget sets are the last persons (as in TOFU), so they nest."""
    if num_persons < 2:
        raise ValueError(
            f"num_persons must be >= 2 to have both forget and retain persons, got {num_persons}"
        )
    counts = split_sizes(num_persons)
    forget = {forget_split(p): list(range(num_persons - n, num_persons)) for p, n in counts.items()}
    retain = {retain_split(p): list(range(num_persons - n)) for p, n in counts.items()}
    return forget | retain


def holdout_persons(num_persons: int, num_holdout: int) -> dict[str, list[int]]:
    """Holdout person indices (into the holdout persons) per config, nested like the forget sets: holdout01 and
    holdout05 have forget01's and forget05's size (as far as there are holdout persons), holdout10 holds every
    holdout person (by default as many as forget10 has)."""
    sizes = split_sizes(num_persons)
    largest = FORGET_PERCENTS[-1]
    return {
        holdout_split(p): list(range(num_holdout if p == largest else min(num_holdout, sizes[p])))
        for p in FORGET_PERCENTS
    }


def revision(config: ClearMiniConfig) -> str:
    """Short stable id of what would be generated, for cache directories and artifact keys."""
    payload = json.dumps({"config": asdict(config), "generator": GENERATOR_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------------------------
# Assembling the configs


def _select(rows: list[dict], columns: Sequence[str]) -> list[dict]:
    return [{c: r[c] for c in columns} for r in rows]


def _mixed(image_rows: list[dict], qa_rows: list[dict]) -> list[dict]:
    """`+tofu` rows: image rows without QA, then text QA rows without image (benchmark.md §2)."""
    images = [
        {"image": r["image"], "caption": r["caption"], "question": None, "answer": None} for r in image_rows
    ]
    texts = [
        {"image": None, "caption": None, "question": r["question"], "answer": r["answer"]} for r in qa_rows
    ]
    return images + texts


def _build_tables(config: ClearMiniConfig) -> dict[str, dict[str, list[dict]]]:
    """All rows of all configs of the three snapshots, in memory, each with its contract columns in order."""
    world = build_world(config)
    used_looks: set[tuple[str, ...]] = set()
    celeb_looks = unique_identities(
        stream(config.seed, "celebrity-looks"), config.num_celebrities, used_looks
    )
    persons = build_persons(config, world, used_looks)
    assert config.num_holdout_persons is not None  # resolved by ClearMiniConfig.__post_init__
    holdout = build_persons(
        config, world, used_looks, "holdout", config.num_holdout_persons, first_book=config.num_persons
    )
    pools = attribute_pools(world)
    names = [p.name for p in persons]
    images = [person_images(config, i, p, names, world.decoys) for i, p in enumerate(persons)]
    qa = [person_qa(config, i, p, pools) for i, p in enumerate(persons)]
    # wrong names for a holdout face: any person's name (the trained ones included, as for a forget face)
    every_name = names + [p.name for p in holdout]
    holdout_images = [
        person_images(config, i, p, every_name, world.decoys, "holdout") for i, p in enumerate(holdout)
    ]
    holdout_qa = [person_qa(config, i, p, pools, "holdout") for i, p in enumerate(holdout)]
    splits = {FULL: list(range(config.num_persons)), **split_persons(config.num_persons)}
    retain_perturbed = splits[RETAIN_SPLITS[-1]][:RETAIN_PERTURBED_PERSONS]  # of retain90, the largest

    def gather(table: list[list[dict]], persons_: list[int]) -> list[dict]:
        return [row for i in persons_ for row in table[i]]

    clear: dict[str, list[dict]] = {}
    tofu: dict[str, list[dict]] = {}
    for split, idx in splits.items():
        clear[split] = gather(images, idx)
        tofu[split] = gather(qa, idx)
    for split, idx in splits.items():
        clear[with_tofu(split)] = _mixed(gather(images, idx), gather(qa, idx))
    for split in FORGET_SPLITS:
        clear[perturbed(split)] = gather(images, splits[split])
        tofu[perturbed(split)] = gather(qa, splits[split])
    clear[RETAIN_PERTURBED] = gather(images, retain_perturbed)
    tofu[RETAIN_PERTURBED] = gather(qa, retain_perturbed)
    real_faces, prior_faces = celebrity_rows(config, world, celeb_looks)
    clear[REAL_FACES] = real_faces
    clear[REAL_WORLD] = scene_rows(config, "real-world", config.num_real_world, with_options=True)
    tofu[REAL_AUTHORS_PERTURBED], tofu[WORLD_FACTS_PERTURBED] = fact_rows(config, world)
    # holdout persons, in no training config: TOFU's holdoutNN (question, answer) and our _perturbed additions
    holdout_splits = holdout_persons(config.num_persons, config.num_holdout_persons)
    for split, idx in holdout_splits.items():
        tofu[split] = gather(holdout_qa, idx)
    for split, idx in holdout_splits.items():
        tofu[perturbed(split)] = gather(holdout_qa, idx)
        clear[perturbed(split)] = gather(holdout_images, idx)
    prior = {
        "faces": prior_faces,
        "looks": look_rows(config),
        "world": prior_world_rows(config),
        "facts": tofu[REAL_AUTHORS_PERTURBED] + tofu[WORLD_FACTS_PERTURBED],
    }
    tables = {CLEAR: clear, TOFU: tofu, PRIOR: prior}
    return {
        kind: {name: _select(rows, SCHEMAS[kind][name]) for name, rows in configs.items()}
        for kind, configs in tables.items()
    }


# ---------------------------------------------------------------------------------------------------------------
# Writing snapshots


_SNAPSHOT_DIRS = {TOFU: "TOFU", PRIOR: "PRIOR", CLEAR: "CLEAR"}  # CLEAR last: its README marks completion
_TITLES = {
    CLEAR: "CLEAR-mini: synthetic multimodal unlearning data in the layout of therem/CLEAR",
    TOFU: "CLEAR-mini TOFU: synthetic text QA in the layout of locuslab/TOFU",
    PRIOR: "CLEAR-mini PRIOR: the prior knowledge a base model is assumed to have (not part of CLEAR)",
}

_NOTES = {
    CLEAR: (
        "`holdout01_perturbed`, `holdout05_perturbed`, `holdout10_perturbed` are CLEAR-mini's addition (therem/CLEAR "
        "has no holdout persons): the face images of persons that are in no other config and so never trained on, "
        "with the columns of `forgetNN_perturbed`, sized like `forgetNN` (for membership inference, benchmark.md §10).",
    ),
    TOFU: (
        "`holdout01`, `holdout05`, `holdout10` follow locuslab/TOFU's holdout configs (question, answer): the QA of "
        "authors who are in no other config and so never trained on. `holdout01_perturbed`, `holdout05_perturbed`, "
        "`holdout10_perturbed` are CLEAR-mini's addition: the same rows with the columns of `forgetNN_perturbed`, "
        "so the holdout set gets truth ratios.",
    ),
}


def _write_snapshot(
    directory: Path, kind: str, tables: dict[str, list[dict]], config: ClearMiniConfig
) -> None:
    write_hf_snapshot(
        directory,
        tables,
        _TITLES[kind],
        default=FULL if kind == CLEAR else None,
        notes=_NOTES.get(kind, ()),
    )
    meta = {
        "config": asdict(config),
        "generator_version": GENERATOR_VERSION,
        "revision": revision(config),
        "rows": {name: len(rows) for name, rows in tables.items()},
    }
    (directory / "clear_mini.json").write_text(
        json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def generate_clear_mini(root: Path, config: ClearMiniConfig) -> dict[str, Path]:
    """Write the CLEAR, TOFU and PRIOR snapshots under root; returns {"clear", "tofu", "prior"} -> directory.

    All three are written into a temporary sibling directory first and then renamed into place, CLEAR last, so an
    interrupted run leaves the previous snapshots (or none), and an existing CLEAR/README.md means a complete set.
    """
    validate(config)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tables = _build_tables(config)
    staging = Path(tempfile.mkdtemp(prefix=".clear_mini.tmp-", dir=root))
    try:
        for kind, dirname in _SNAPSHOT_DIRS.items():
            _write_snapshot(staging / dirname, kind, tables[kind], config)
        for dirname in _SNAPSHOT_DIRS.values():
            install_snapshot(staging / dirname, root / dirname)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {kind: root / dirname for kind, dirname in sorted(_SNAPSHOT_DIRS.items())}
