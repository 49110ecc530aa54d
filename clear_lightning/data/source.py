"""Where the data comes from: a hub id at a pinned revision or a local snapshot directory.

CLEAR-mini and the real CLEAR are read by the same `load_dataset(<dir or id>, <config>)` call.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import Any

import datasets

from ..errors import ClearConfigError
from .schema import check_columns, missing_columns

log = logging.getLogger(__name__)


class SnapshotSource:
    """CLEAR (+ TOFU text QA, + optional PRIOR knowledge) read from dataset snapshots or hub ids."""

    def __init__(
        self,
        name: str,
        path: str,
        tofu_path: str,
        prior_path: str | None = None,
        revision: str | None = None,
        tofu_revision: str | None = None,
        image_tasks: Sequence[str] = ("caption",),
    ) -> None:
        self.name = name
        self.image_tasks = tuple(image_tasks)  # what image rows train: caption and/or face_name
        self.locations = {"clear": path, "tofu": tofu_path, "prior": prior_path}
        self.revisions = {"clear": revision, "tofu": tofu_revision, "prior": None}
        self._cache: dict[tuple[str, str], datasets.Dataset] = {}

    @property
    def has_prior(self) -> bool:
        return self.locations["prior"] is not None

    @cached_property
    def revision(self) -> str:
        """A data revision for provenance and artifact keys: the pinned one or a content hash."""
        parts = []
        for collection in ("clear", "tofu", "prior"):
            location = self.locations[collection]
            if location is None:
                continue
            pinned = self.revisions[collection]
            if pinned:
                parts.append(pinned)
            elif Path(location).exists():
                parts.append(_content_hash(Path(location)))
            else:
                parts.append(location)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]

    def identity(self) -> dict[str, Any]:
        """What determines the data, for artifact keys (not where it happens to live)."""
        return {"name": self.name, "revision": self.revision, "image_tasks": list(self.image_tasks)}

    def load(self, collection: str, config: str) -> datasets.Dataset:
        """One config's `train` split, validated against SPEC §2, cached per process."""
        key = (collection, config)
        if key not in self._cache:
            missing_columns(collection, config, ())  # an unknown config name fails here, before any I/O
            location = self.locations.get(collection)
            if location is None:
                raise ClearConfigError(
                    f"data source '{self.name}' has no '{collection}' collection",
                    "the pretrain stage needs a source with prior knowledge (data=clear_mini)",
                )
            if not _is_hub_id(location) and not Path(location).exists():
                raise ClearConfigError(
                    f"dataset path {location} does not exist",
                    "set data.path / data.tofu_path to a local snapshot (a clone of the dataset repo) or a hub id",
                )
            try:
                ds = datasets.load_dataset(
                    location,
                    config,
                    split="train",
                    revision=self.revisions[collection],
                    cache_dir=_cache_dir(location),
                    verification_mode="no_checks",  # row counts are recounted and validated below
                )
            except ValueError as err:
                if "corresponds to no data" in str(err):
                    raise ClearConfigError(
                        f"{collection} config '{config}' at {location} has no rows",
                        "check the snapshot or the split choice; an empty set cannot be unlearned or scored",
                    ) from err
                if "BuilderConfig" in str(err) or "not found" in str(err):
                    raise ClearConfigError(
                        f"config '{config}' is missing from {location}: {err}",
                        "use a complete snapshot of the dataset (SPEC §2 lists every config)",
                    ) from err
                raise
            check_columns(collection, config, ds.column_names, location)
            if len(ds) == 0:
                raise ClearConfigError(
                    f"{collection} config '{config}' at {location} has no rows",
                    "check the snapshot or the split choice; an empty set cannot be unlearned or scored",
                )
            self._cache[key] = ds
        return self._cache[key]


class ClearMiniSource(SnapshotSource):
    """The synthetic CLEAR-mini, generated on first use into the artifact root and reused after."""

    def __init__(self, root: str, image_tasks: Sequence[str] = ("caption",), **sizes: Any) -> None:
        from .clear_mini import ClearMiniConfig, generate_clear_mini, revision

        config = ClearMiniConfig(**sizes)
        rev = revision(config)
        snapshot_root = Path(root) / f"clear_mini-{rev}"
        if not (snapshot_root / "CLEAR" / "README.md").exists():
            log.info("generating CLEAR-mini (%s) in %s", _describe(config), snapshot_root)
            generate_clear_mini(snapshot_root, config)
        self.config = config
        super().__init__(
            name="clear_mini",
            path=str(snapshot_root / "CLEAR"),
            tofu_path=str(snapshot_root / "TOFU"),
            prior_path=str(snapshot_root / "PRIOR"),
            revision=rev,
            tofu_revision=rev,
            image_tasks=image_tasks,
        )

    @cached_property
    def revision(self) -> str:
        return self.revisions["clear"]

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "config": asdict(self.config)}


def _describe(config: Any) -> str:
    return json.dumps(asdict(config))


def _is_hub_id(location: str) -> bool:
    return (
        not location.startswith(("/", ".", "~")) and location.count("/") == 1 and not Path(location).exists()
    )


def _content_hash(path: Path, with_mtime: bool = False) -> str:
    """Hash of file names and sizes (and mtimes): cheap, and changes whenever a snapshot's files change."""
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file() and ".git" not in f.parts:
            stat = f.stat()
            h.update(
                f"{f.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns if with_mtime else ''}".encode()
            )
    return h.hexdigest()[:12]


def _cache_dir(location: str) -> str | None:
    """A datasets cache per local snapshot *content*: datasets keys a local folder's cache by its name and
    README only, so a changed parquet file in a same-named folder would otherwise be served stale."""
    if _is_hub_id(location):
        return None
    return str(
        Path(datasets.config.HF_DATASETS_CACHE) / "clear_lightning" / _content_hash(Path(location), True)
    )
