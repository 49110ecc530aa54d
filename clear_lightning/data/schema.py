"""Checking a loaded config against the on-disk contract (benchmark.md §2), whose configs and columns `contract` lists.

Holdout configs are *optional* (`contract.OPTIONAL_CONFIGS`): `validate` never requires them, but checks their
columns where a snapshot has them.

The files behind the configs a README lists are checked too (`file_problems`): they exist and parse, their own
parquet schema has the contract's columns (the features `datasets` derives from a README fill an absent column
with None, which only fails in training), and every image decodes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from PIL import Image, UnidentifiedImageError

from ..contract import IMAGE, OPTIONAL_CONFIGS, SCHEMAS
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


# ---------------------------------------------------------------------------------------------------------------
# The files behind the configs: they exist, parse, hold the columns and decodable images


def readme_configs(location: Path) -> dict[str, list[str] | None] | None:
    """The configs the README's YAML front matter lists, each with its `train` data_files patterns.

    The layout of a hub dataset clone (and of CLEAR-mini): `configs:` entries with `config_name`, `data_files`
    (a pattern, a list of them, `{split, path}` entries or a `{split: patterns}` map) and an optional `data_dir`, patterns relative to the
    snapshot. None, for the whole README (no `configs:` block) or for one config (no `data_files`, or patterns
    that are not relative paths): no listed files to check, `datasets` finds them alone.
    Raises `yaml.YAMLError` for front matter that does not parse.
    """
    readme = location / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8")
    end = text.find("\n---", 3)
    if not text.startswith("---") or end < 0:
        return None
    meta = yaml.safe_load(text[3:end]) or {}
    if not isinstance(meta, dict) or not isinstance(meta.get("configs"), list):
        return None
    listed: dict[str, list[str] | None] = {}
    for entry in meta["configs"]:
        if not isinstance(entry, dict) or "config_name" not in entry:
            continue
        files = entry.get("data_files")
        if isinstance(files, dict) and "path" not in files:  # {split: patterns}
            files = [{"split": split, "path": paths} for split, paths in files.items()]
        if isinstance(files, (str, dict)):
            files = [files]
        patterns: list[str] = []
        for item in files or ():
            if isinstance(item, str):  # no split named: the train split
                patterns.append(item)
            elif isinstance(item, dict) and item.get("split", "train") == "train":
                path = item.get("path", [])
                patterns += [path] if isinstance(path, str) else list(path)
        prefix = entry.get("data_dir")
        patterns = [f"{prefix}/{p}" if prefix else str(p) for p in patterns]
        local = files is not None and not any(p.startswith("/") or "://" in p for p in patterns)
        listed[str(entry["config_name"])] = patterns if local else None
    return listed


def file_problems(
    collection: str,
    config: str,
    location: Path,
    patterns: list[str] | None,
    decoded: dict[bytes, str | None],
) -> list[str]:
    """What is wrong with the parquet files of one listed config: none matches, one does not parse, one lacks a
    column the contract requires (read from the file's own schema: `datasets` fills a column the README declares
    but a file lacks with None), or an image row does not decode. `decoded` remembers image bytes already
    decoded (the real CLEAR repeats every image in several configs)."""
    head = f"{collection}: config '{config}'"
    if patterns is None:
        return []
    if not patterns:
        return [f"{head} is listed in {location / 'README.md'} without a train split"]
    files = sorted({f for p in patterns for f in _glob(location, p) if not _hidden(f, location)})
    if not files:
        return [f"{head} is listed in {location / 'README.md'}, but no file in {location} matches {patterns}"]
    problems = []
    for file in (f for f in files if f.suffix == ".parquet"):  # the layout here: parquet shards
        try:
            parquet = pq.ParquetFile(file)
            missing = missing_columns(collection, config, parquet.schema_arrow.names)
        except (pa.ArrowException, OSError, ValueError) as err:
            problems.append(f"{head} file {file} is not a readable parquet file ({_why(file, err)})")
            continue
        if missing:
            problems.append(
                f"{head} lacks column(s) {missing} in {file} (a README that still declares them makes "
                "`datasets` fill them with None)"
            )
            continue
        try:
            problem = _image_problem(parquet, file, location, decoded)
        except (pa.ArrowException, OSError, ValueError) as err:
            problem = f"file {file} is not a readable parquet file ({_why(file, err)})"
        if problem:
            problems.append(f"{head} {problem}")
    return problems


def _image_problem(
    parquet: pq.ParquetFile, file: Path, location: Path, decoded: dict[bytes, str | None]
) -> str | None:
    """Every page is read (a damaged one fails here); the first image row that does not decode, if any."""
    has_images = IMAGE in parquet.schema_arrow.names
    bad: list[tuple[int, str]] = []
    row = 0
    for batch in parquet.iter_batches(batch_size=256):
        for value in batch.column(IMAGE).to_pylist() if has_images else ():
            error = _image_error(value, location, decoded)
            if error is not None:
                bad.append((row, error))
            row += 1
    if not bad:
        return None
    more = f" (and {len(bad) - 1} more row(s) of this file)" if len(bad) > 1 else ""
    return f"row {bad[0][0]} (0-based) of {file} does not decode as an image ({bad[0][1]}){more}"


def _image_error(value: object, location: Path, decoded: dict[bytes, str | None]) -> str | None:
    """Why one `image` cell does not decode (None: it does, or it is empty, as on the text rows of `+tofu`)."""
    data, path = (value.get("bytes"), value.get("path")) if isinstance(value, dict) else (value, None)
    if data is None and path is None:
        return None
    if data is None:
        try:
            data = (location / str(path)).read_bytes()
        except OSError:
            return f"no bytes, and its path {path} is not a file in {location}"
    if not isinstance(data, bytes):
        return f"a {type(data).__name__}, not image bytes"
    key = hashlib.blake2b(data, digest_size=16).digest()
    if key not in decoded:
        decoded[key] = _decode_error(data)
    return decoded[key]


def _decode_error(data: bytes) -> str | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()  # checksums, truncation
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # the pixels, as training reads them
    except UnidentifiedImageError:
        return "not in an image format PIL knows"
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... for damaged data
        return f"{type(err).__name__}: {err}"
    return None


def _why(file: Path, err: Exception) -> str:
    try:
        with file.open("rb") as f:
            if f.read(len(_LFS_POINTER)) == _LFS_POINTER:
                return "a git-lfs pointer, not the data: the clone was made without git-lfs"
    except OSError:
        pass
    return f"{type(err).__name__}: {err}"


def _glob(location: Path, pattern: str) -> list[Path]:
    try:
        return [f for f in location.glob(pattern) if f.is_file()]
    except (ValueError, NotImplementedError):  # an empty or otherwise unusable pattern matches nothing
        return []


def _hidden(file: Path, location: Path) -> bool:
    """`datasets` skips files and folders whose name starts with '.' or '__'."""
    return any(part.startswith((".", "__")) for part in file.relative_to(location).parts)


_LFS_POINTER = b"version https://git-lfs"
