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
import yaml

from ..contract import CLEAR, COLLECTIONS, PRIOR, SCHEMAS, TOFU
from ..errors import ClearConfigError
from .schema import check_columns, file_problems, is_optional, missing_columns, readme_configs

log = logging.getLogger(__name__)

# What a validation stamp vouches for; a stamp written by fewer checks has another key and is not trusted.
VALIDATION_CHECKS = "contract+files+columns+images/2"


class SnapshotSource:
    """CLEAR (+ TOFU text QA, + optional PRIOR knowledge) read from dataset snapshots or hub ids.

    `qa_per_person`: how many consecutive TOFU QA rows belong to one person (TOFU: 20 per author). TOFU rows
    carry no name, so evaluation records identify the k-th person of a config by row // qa_per_person.
    """

    def __init__(
        self,
        name: str,
        path: str,
        tofu_path: str,
        prior_path: str | None = None,
        revision: str | None = None,
        tofu_revision: str | None = None,
        image_tasks: Sequence[str] = ("caption",),
        qa_per_person: int = 20,
    ) -> None:
        if not isinstance(qa_per_person, int) or isinstance(qa_per_person, bool) or qa_per_person < 1:
            raise ClearConfigError(
                f"qa_per_person must be a positive int, got {qa_per_person!r}",
                "TOFU has 20 QA rows per author; CLEAR-mini has data.qa_per_person",
            )
        self.name = name
        self.image_tasks = tuple(image_tasks)  # what image rows train: caption and/or face_name
        self.qa_per_person = qa_per_person
        self.locations = {CLEAR: path, TOFU: tofu_path, PRIOR: prior_path}
        self.revisions = {CLEAR: revision, TOFU: tofu_revision, PRIOR: None}
        self._cache: dict[tuple[str, str], datasets.Dataset] = {}
        self._absent: set[tuple[str, str]] = set()

    @property
    def has_prior(self) -> bool:
        return self.locations[PRIOR] is not None

    @cached_property
    def revision(self) -> str:
        """A data revision for provenance and artifact keys: the pinned one or a content hash."""
        parts = []
        for collection in COLLECTIONS:
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
        """One config's `train` split, validated against benchmark.md §2, cached per process."""
        key = (collection, config)
        if key not in self._cache:
            ds = self._load_unchecked(collection, config)
            location = self.locations[collection]
            check_columns(collection, config, ds.column_names, location)
            if len(ds) == 0:
                raise EmptyConfigError(
                    f"{collection} config '{config}' at {location} has no rows",
                    "check the snapshot or the split choice; an empty set cannot be unlearned or scored",
                )
            self._cache[key] = ds
        return self._cache[key]

    def has_config(self, collection: str, config: str) -> bool:
        """Whether the snapshot has `config` (for the optional holdout configs); loads and validates it if so."""
        key = (collection, config)
        if key in self._cache:
            return True
        if key in self._absent or self.locations.get(collection) is None:
            return False
        try:
            self.load(collection, config)
        except MissingConfigError:
            self._absent.add(key)
            return False
        return True

    def _load_unchecked(self, collection: str, config: str) -> datasets.Dataset:
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
            return datasets.load_dataset(
                location,
                config,
                split="train",
                revision=self.revisions[collection],
                cache_dir=_cache_dir(location),
                verification_mode="no_checks",  # row counts are recounted and validated by `validate`
            )
        except ValueError as err:
            if "corresponds to no data" in str(err):
                raise EmptyConfigError(
                    f"{collection} config '{config}' at {location} has no rows",
                    "check the snapshot or the split choice; an empty set cannot be unlearned or scored",
                ) from err
            if any(m in str(err) for m in ("BuilderConfig", "not found", "data_files are invalid")):
                raise MissingConfigError(
                    f"config '{config}' is missing from {location}: {err}",
                    "use a complete snapshot of the dataset (benchmark.md §2 lists every config)",
                ) from err
            raise
        except (ConnectionError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as err:
            if _is_hub_id(location) and datasets.config.HF_HUB_OFFLINE:
                raise ClearConfigError(
                    f"{location} (config '{config}') is not in the local datasets cache and offline mode is on",
                    f"clone the dataset repository where there is internet (git clone "
                    f"https://huggingface.co/datasets/{location}) and pass its directory as data.path / "
                    "data.tofu_path, or unset HF_DATASETS_OFFLINE",
                ) from err
            raise

    def validate(self) -> dict[str, dict[str, int]]:
        """Check every config and column of benchmark.md §2 at once and recount the rows.

        One error lists everything that is missing, instead of failing on the first config a stage
        happens to read. Optional configs (the holdout ones) may be absent; where present, their columns are
        checked too. In a local snapshot, the files behind every config its README lists are checked first
        (`schema.file_problems`: they exist and parse, their parquet schema has the columns, every image decodes),
        so a damaged file is named here, with its row, and not in a traceback halfway through training.
        The result is stamped next to the datasets cache of this exact snapshot content (or pinned revision), so a
        snapshot is validated once, not in every run.
        """
        stamp = self._validation_stamp()
        if stamp is not None and stamp.exists():
            return json.loads(stamp.read_text())
        damaged: list[str] = []
        unreadable = self._file_problems(damaged)  # (collection, config) not to hand to `datasets`
        problems: list[str] = []
        counts: dict[str, dict[str, int]] = {}
        for collection, schema in SCHEMAS.items():
            if self.locations[collection] is None:
                continue
            counts[collection] = {}
            for config in schema:
                if (collection, config) in unreadable or (collection, None) in unreadable:
                    continue
                try:
                    ds = self._load_unchecked(collection, config)
                except MissingConfigError:
                    if not is_optional(collection, config):
                        problems.append(f"{collection}: config '{config}' is missing")
                    continue
                except EmptyConfigError:
                    problems.append(f"{collection}: config '{config}' has no rows")
                    continue
                except (datasets.exceptions.DatasetGenerationError, FileNotFoundError) as err:
                    damaged.append(
                        f"{collection}: config '{config}' could not be read ({err.__cause__ or err})"
                    )
                    continue
                missing = missing_columns(collection, config, ds.column_names)
                if missing:
                    problems.append(f"{collection}: config '{config}' lacks column(s) {missing}")
                elif len(ds) == 0:
                    problems.append(f"{collection}: config '{config}' has no rows")
                counts[collection][config] = len(ds)
        if damaged or problems:
            raise self._data_error(damaged, problems)
        if stamp is not None:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(json.dumps(counts, indent=2))
        return counts

    def _data_error(self, damaged: list[str], problems: list[str]) -> ClearConfigError:
        """One error for every damaged file and every gap in the contract, each with its fix."""
        where = ", ".join(f"{c}={loc}" for c, loc in self.locations.items() if loc)
        what, fixes = [], []
        if damaged:
            what.append("has missing or damaged files")
            fixes.append(self._repair_fix())
        if problems:
            what.append("does not match benchmark.md §2")
            fixes.append(
                "use complete snapshots (clones of the dataset repositories) or pin a data.revision / "
                "data.tofu_revision that has every config and column"
            )
        return ClearConfigError(
            f"the data ({where}) {' and '.join(what)}:\n  - " + "\n  - ".join(damaged + problems),
            "; ".join(fixes),
        )

    def _file_problems(self, damaged: list[str]) -> set[tuple[str, str | None]]:
        """Appends the problems of the files behind the configs each local snapshot's README lists (those the
        contract names) to `damaged`; returns the configs not to load ((collection, None): none of it).
        A hub id is left to `datasets`, which verifies what it downloads."""
        unreadable: set[tuple[str, str | None]] = set()
        decoded: dict[bytes, str | None] = {}  # image bytes -> why they do not decode; shared by all configs
        for collection, schema in SCHEMAS.items():
            location = self.locations[collection]
            if location is None or _is_hub_id(location) or not Path(location).is_dir():
                continue
            root = Path(location)
            try:
                listed = readme_configs(root)
            except yaml.YAMLError as err:
                damaged.append(
                    f"{collection}: the YAML front matter of {root / 'README.md'} does not parse ({err})"
                )
                unreadable.add((collection, None))
                continue
            for config in schema:
                if listed is None or config not in listed:
                    continue  # not listed: the contract check reports it missing (unless optional)
                found = file_problems(collection, config, root, listed[config], decoded)
                if found:
                    damaged += found
                    unreadable.add((collection, config))
        return unreadable

    def _repair_fix(self) -> str:
        """What to do about missing or damaged files (ClearMiniSource: regenerate)."""
        readmes = [
            str(Path(loc) / "README.md") for loc in self.locations.values() if loc and not _is_hub_id(loc)
        ]
        return (
            "re-download the configs named above (in a clone of the dataset repository: `git lfs pull`, or clone "
            "it again); where a README lists a config or column that its files do not have, fix that README ("
            + ", ".join(readmes)
            + ")"
        )

    def _validation_stamp(self) -> Path | None:
        """Where a passed validation is remembered: keyed by the checks made (VALIDATION_CHECKS) and the local
        content (with mtimes) or pinned revision; an unpinned hub id is re-validated every time, since its
        content can change."""
        parts = [VALIDATION_CHECKS]
        for collection in COLLECTIONS:
            location = self.locations[collection]
            if location is None:
                continue
            if _is_hub_id(location):
                if not self.revisions[collection]:
                    return None
                parts.append(f"{location}@{self.revisions[collection]}")
            else:
                parts.append(f"{Path(location).resolve()}:{_content_hash(Path(location), True)}")
        key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
        return Path(datasets.config.HF_DATASETS_CACHE) / "clear_lightning" / "validated" / f"{key}.json"


class MissingConfigError(ClearConfigError):
    """A config benchmark.md §2 requires is not in the snapshot."""


class EmptyConfigError(ClearConfigError):
    """A config exists but has no rows."""


class ClearMiniSource(SnapshotSource):
    """The synthetic CLEAR-mini, generated on first use into the artifact root and reused after."""

    def __init__(self, root: str, image_tasks: Sequence[str] = ("caption",), **sizes: Any) -> None:
        from .clear_mini import ClearMiniConfig, generate_clear_mini, revision

        config = ClearMiniConfig(**sizes)
        rev = revision(config)
        snapshot_root = Path(root) / f"clear_mini-{rev}"
        self.snapshot_root = snapshot_root  # what to delete to regenerate it (`_repair_fix`)
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
            qa_per_person=config.qa_per_person,
        )

    @cached_property
    def revision(self) -> str:
        return self.revisions[CLEAR]

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "config": asdict(self.config)}

    def _repair_fix(self) -> str:
        return (
            f"CLEAR-mini is generated, not downloaded: delete {self.snapshot_root} and run again, "
            "which regenerates it (README included)"
        )


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
