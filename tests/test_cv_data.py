"""Faces as tensors: procedural celebrities in the parquet snapshot layout; bad input names problem and fix."""

from __future__ import annotations

import io

import datasets
import pytest
import torch
from PIL import Image

from clear_lightning.cv.data import FaceSet, LocalFaces, ProceduralCelebrities, augment, faces_from_dataset
from clear_lightning.errors import ClearConfigError


def _png(colour: tuple[int, int, int], size: int = 8) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def _table(images: list[dict], names: list[str]) -> datasets.Dataset:
    features = datasets.Features({"image": datasets.Image(), "name": datasets.Value("string")})
    return datasets.Dataset.from_dict({"image": images, "name": names}, features=features)


def test_faces_are_decoded_resized_and_labelled_by_first_appearance():
    faces = faces_from_dataset(
        _table([_png((255, 0, 0)), _png((0, 0, 255)), _png((0, 255, 0))], ["b", "a", "b"]), 4, "t"
    )
    assert faces.images.shape == (3, 3, 4, 4) and faces.images.dtype == torch.uint8
    assert faces.names == ["b", "a"] and faces.labels.tolist() == [0, 1, 0]
    assert faces.images[1, 2].float().mean() == 255  # blue channel of the blue image


def test_a_corrupt_image_names_its_row_and_the_fix():
    bad = {"bytes": b"not a png", "path": None}
    ds = _table([_png((1, 2, 3))], ["a"]).cast_column("image", datasets.Image(decode=False))
    ds = datasets.Dataset.from_dict(
        {"image": [ds[0]["image"], bad], "name": ["a", "b"]},
        features=datasets.Features({"image": datasets.Image(decode=False), "name": datasets.Value("string")}),
    )
    with pytest.raises(ClearConfigError, match="row 1.*cannot be decoded") as err:
        faces_from_dataset(ds, 4, "faces")
    assert "corrupt" in err.value.fix


def test_missing_column_missing_path_and_empty_group_are_config_errors(tmp_path):
    with pytest.raises(ClearConfigError, match="no 'name' column"):
        faces_from_dataset(datasets.Dataset.from_dict({"image": [_png((0, 0, 0))]}), 4, "faces")
    with pytest.raises(ClearConfigError, match="does not exist"):
        LocalFaces(str(tmp_path / "nowhere")).faces(8)
    faces = FaceSet(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 0]), ["a", "b"])
    with pytest.raises(ClearConfigError, match="group is empty"):
        faces.subset([1])


def test_procedural_celebrities_are_written_once_and_read_back_with_load_dataset(tmp_path):
    source = ProceduralCelebrities(str(tmp_path), num_identities=3, images_per_identity=2, image_size=16)
    faces = source.faces(16)
    assert len(faces) == 6 and len(faces.names) == 3 and faces.images.shape[-1] == 16
    readme = (tmp_path / f"cv_celebrities-{source.revision}" / "README.md").read_text()
    assert "configs:" in readme
    again = ProceduralCelebrities(str(tmp_path), num_identities=3, images_per_identity=2, image_size=16)
    assert again.revision == source.revision and torch.equal(again.faces(16).images, faces.images)
    assert (
        ProceduralCelebrities(str(tmp_path), num_identities=4, images_per_identity=2, image_size=16).revision
        != source.revision
    )


def test_augment_keeps_shape_and_changes_pixels():
    images = torch.randint(0, 255, (4, 3, 16, 16), dtype=torch.uint8).float()
    out = augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and not torch.equal(out, images)
