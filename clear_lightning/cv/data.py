"""Faces as tensors: the CLEAR persons (same loader as the main track) and a "celebrity" pre-training set.

The embedded celebrity set is drawn with the CLEAR-mini face generator and written once in the HF parquet
snapshot layout, so it is read back by the same `load_dataset(<dir>, <config>)` call as a real local dataset.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..contract import CLEAR, FORGET_SPLITS, FULL
from ..data.faces import draw_face, random_identity, random_variation
from ..data.hf_snapshot import install_snapshot, write_hf_snapshot
from ..errors import ClearConfigError

log = logging.getLogger(__name__)
CELEBRITY_GENERATOR_VERSION = 1


@dataclass
class FaceSet:
    """Images (N, 3, H, W) uint8, person labels (N,) indexing `names`, in the dataset's row order."""

    images: Tensor
    labels: Tensor
    names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, persons: list[int] | tuple[int, ...]) -> FaceSet:
        """Rows of the given persons, relabelled 0..k-1 in the order given (the head's class slots)."""
        slot = {p: i for i, p in enumerate(persons)}
        keep = [i for i, p in enumerate(self.labels.tolist()) if p in slot]
        if not keep:
            raise ClearConfigError(
                f"no images for persons {list(persons)[:5]}…", "check the data config: a face group is empty"
            )
        labels = torch.tensor([slot[p] for p in self.labels[keep].tolist()])
        return FaceSet(self.images[keep], labels, [self.names[p] for p in persons])

    def select(self, mask: Tensor) -> FaceSet:
        """The rows where mask is True, labels unchanged."""
        return FaceSet(self.images[mask], self.labels[mask], self.names)


def to_float(images: Tensor) -> Tensor:
    """uint8 → float in [0, 1]; the network normalises further."""
    return images.float().div_(255.0)


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random horizontal flip and a shift of up to 1/8 of the side (reflect padding): a new view of a face."""
    n, _, h, w = images.shape
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.where(flip[:, None, None, None], images.flip(-1), images)
    pad = max(1, h // 8)
    padded = torch.nn.functional.pad(out, (pad, pad, pad, pad), mode="reflect")
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + h, dx : dx + w]


def faces_from_dataset(ds: datasets.Dataset, image_size: int, where: str) -> FaceSet:
    """Decode an (image, name) table; a corrupt image or missing column raises ClearConfigError."""
    for column in ("image", "name"):
        if column not in ds.column_names:
            raise ClearConfigError(
                f"{where} has no '{column}' column (columns: {ds.column_names})",
                "point the CV data config at a face dataset with image and name columns",
            )
    if len(ds) == 0:
        raise ClearConfigError(
            f"{where} has no rows", "use a face dataset with at least one image per person"
        )
    names: dict[str, int] = {}
    labels, arrays = [], []
    raw = ds.cast_column("image", datasets.Image(decode=False))
    for row, (image, name) in enumerate(zip(raw["image"], raw["name"], strict=True)):
        labels.append(names.setdefault(str(name), len(names)))
        arrays.append(_decode(image, image_size, f"{where} row {row}"))
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return FaceSet(images, torch.tensor(labels), list(names))


def _decode(image: dict[str, Any], size: int, where: str) -> np.ndarray:
    try:
        if image.get("bytes") is not None:
            pil = Image.open(io.BytesIO(image["bytes"]))
        else:
            pil = Image.open(image["path"])
        pil = pil.convert("RGB")
    except (UnidentifiedImageError, OSError, TypeError, KeyError) as err:
        raise ClearConfigError(
            f"{where}: the image cannot be decoded ({err})", "fix or remove the corrupt image in the dataset"
        ) from err
    if pil.size != (size, size):
        pil = pil.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(pil, dtype=np.uint8)


class ClearFaces:
    """The CLEAR persons' faces (`full` config) and the fixed forget split, from a main-track data source."""

    def __init__(self, source: Any, forget_split: str = FORGET_SPLITS[-1]) -> None:
        self.source, self.forget_split = source, forget_split

    @property
    def revision(self) -> str:
        return self.source.revision

    def faces(self, image_size: int, min_images: int = 6) -> FaceSet:
        """Every person's images; each needs `min_images` (enrolment images + at least one probe)."""
        try:
            full = self.source.load(CLEAR, FULL)
        except ClearConfigError as err:  # the main track's message names its own keys; name the CV ones
            raise ClearConfigError(
                err.problem, f"{err.fix} (CV track: data.persons.source.path=...)"
            ) from err
        faces = faces_from_dataset(full, image_size, "CLEAR full")
        counts = torch.bincount(faces.labels, minlength=len(faces.names))
        if int(counts.min()) < min_images:
            who = faces.names[int(counts.argmin())]
            raise ClearConfigError(
                f"person '{who}' has {int(counts.min())} images; enrolment + probing needs {min_images}",
                "use more images per person (data.persons.source.images_per_person) or lower protocol.enrol_images",
            )
        return faces

    def forget_persons(self, faces: FaceSet) -> list[int]:
        """Indices (into faces.names) of the fixed forget set."""
        ds = self.source.load(CLEAR, self.forget_split)
        index = {n: i for i, n in enumerate(faces.names)}
        persons = sorted({index[n] for n in ds["name"] if n in index})
        if not persons:
            raise ClearConfigError(
                f"the {self.forget_split} persons are not among the CLEAR full persons",
                "use a complete snapshot whose forget split names persons of the full config",
            )
        return persons


class LocalFaces:
    """A local face dataset (image + name columns) for real pre-training, e.g. a CelebA-style identity set."""

    def __init__(self, path: str, config: str | None = None, revision: str | None = None) -> None:
        self.path, self.config, self._revision = path, config, revision

    @property
    def revision(self) -> str:
        if self._revision:
            return self._revision
        h = hashlib.sha256()
        for f in sorted(Path(self.path).rglob("*")):
            if f.is_file():
                h.update(f"{f.relative_to(self.path)}:{f.stat().st_size}".encode())
        return h.hexdigest()[:12]

    def faces(self, image_size: int) -> FaceSet:
        if not Path(self.path).exists():
            raise ClearConfigError(
                f"celebrity dataset path {self.path} does not exist",
                "set data.celebrities.path to a local dataset directory with image and name columns",
            )
        try:
            ds = datasets.load_dataset(self.path, self.config, split="train")
        except ValueError as err:
            raise ClearConfigError(
                f"cannot read the celebrity dataset at {self.path}: {err}",
                "use a dataset directory loadable by datasets.load_dataset with a train split",
            ) from err
        return faces_from_dataset(ds, image_size, f"celebrities at {self.path}")


class ProceduralCelebrities(LocalFaces):
    """The embedded pre-training identities: procedural faces (own random stream, so not CLEAR-mini persons)."""

    def __init__(
        self,
        root: str,
        num_identities: int = 100,
        images_per_identity: int = 10,
        image_size: int = 32,
        seed: int = 0,
    ) -> None:
        if num_identities < 2 or images_per_identity < 2:
            raise ClearConfigError(
                f"{num_identities} identities x {images_per_identity} images cannot train identification",
                "use at least 2 identities with at least 2 images each",
            )
        self.spec = {
            "num_identities": num_identities,
            "images_per_identity": images_per_identity,
            "image_size": image_size,
            "seed": seed,
            "generator": CELEBRITY_GENERATOR_VERSION,
        }
        rev = hashlib.sha256(json.dumps(self.spec, sort_keys=True).encode()).hexdigest()[:12]
        path = Path(root) / f"cv_celebrities-{rev}"
        if not (path / "README.md").exists():
            log.info("generating %d procedural celebrities in %s", num_identities, path)
            _write_celebrities(path, self.spec)
        super().__init__(str(path), None, rev)


def _write_celebrities(path: Path, spec: dict[str, Any]) -> None:
    """One `default` config (image, name) in the hub layout, staged and swapped into place like CLEAR-mini."""
    rng = random.Random(f"cv-celebrities/{spec['seed']}")
    seen: set[tuple[str, ...]] = set()
    rows: list[dict[str, Any]] = []
    while len(seen) < spec["num_identities"]:
        identity = random_identity(rng)
        if identity.key() in seen:
            continue
        seen.add(identity.key())
        for _ in range(spec["images_per_identity"]):
            buf = io.BytesIO()
            draw_face(identity, random_variation(rng), spec["image_size"]).save(buf, format="PNG")
            rows.append(
                {"image": {"bytes": buf.getvalue(), "path": None}, "name": f"celebrity_{len(seen) - 1:04d}"}
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".cv_celebrities.tmp-", dir=path.parent))
    try:
        write_hf_snapshot(
            staging / "snapshot",
            {"default": rows},
            "CV celebrities (procedural)",
            default="default",
            generator="clear_lightning.cv.data",
        )
        (staging / "snapshot" / "spec.json").write_text(json.dumps(spec, sort_keys=True) + "\n")
        install_snapshot(staging / "snapshot", path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
