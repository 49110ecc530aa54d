"""CLEAR-mini: the synthetic dataset must match the real CLEAR/TOFU on-disk contract (benchmark.md §2) and be reproducible."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import datasets
import pytest
from PIL import Image

from clear_lightning.data import clear_mini as cm
from clear_lightning.data import hf_snapshot
from clear_lightning.data.clear_mini import (
    ClearMiniConfig,
    generate_clear_mini,
    revision,
    split_persons,
)
from clear_lightning.data.faces import draw_face, draw_scene, random_identity, random_scene, random_variation
from clear_lightning.data.idk import load_idk_answers
from clear_lightning.data.mini_config import forget_person_count

# benchmark.md §2, written out here independently of the package's own schema module.
_IMG = ["image", "caption", "name"]
_MIX = ["image", "caption", "question", "answer"]
_PIMG = _IMG + ["paraphrased_caption", "perturbed_captions", "perturbed_names"]
_PQA = ["question", "answer", "paraphrased_answer", "perturbed_answer"]
_SPLITS = ["forget01", "forget05", "forget10", "retain99", "retain95", "retain90"]
_HOLDOUTS = ["holdout01", "holdout05", "holdout10"]  # TOFU's holdout configs (+ our _perturbed additions)
CLEAR_CONFIGS = {
    "full": _IMG,
    **dict.fromkeys(_SPLITS, _IMG),
    "full+tofu": _MIX,
    **{f"{s}+tofu": _MIX for s in _SPLITS},
    **{f"{s}_perturbed": _PIMG for s in ("forget01", "forget05", "forget10", "retain")},
    "real_faces": ["image", "answer", "options"],
    "real_world": ["image", "question", "answer", "prompt", "options"],
    **{f"{s}_perturbed": _PIMG for s in _HOLDOUTS},
}
TOFU_CONFIGS = {
    "full": ["question", "answer"],
    **{s: ["question", "answer"] for s in _SPLITS},
    **{
        f"{s}_perturbed": _PQA
        for s in ("forget01", "forget05", "forget10", "retain", "real_authors", "world_facts")
    },
    **{s: ["question", "answer"] for s in _HOLDOUTS},
    **{f"{s}_perturbed": _PQA for s in _HOLDOUTS},
}
PRIOR_CONFIGS = {
    "faces": ["image", "answer", "question"],
    "world": ["image", "question", "answer"],
    "facts": ["question", "answer"],
}

SMALL = ClearMiniConfig(
    num_persons=7,
    qa_per_person=25,
    images_per_person=3,
    image_size=24,
    num_celebrities=3,
    images_per_celebrity=2,
    num_real_world=12,
    num_perturbed=6,
    prior_images_per_celebrity=3,
    num_prior_world=10,
    seed=3,
)


def _offline(mp: pytest.MonkeyPatch, cache: Path) -> None:
    mp.setenv("HF_DATASETS_OFFLINE", "1")
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("HF_DATASETS_CACHE", str(cache))
    mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    mp.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch, tmp_path / "hf_cache")


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """One small snapshot set shared by the read-only tests (generation is the slow part)."""
    root = tmp_path_factory.mktemp("clear_mini")
    with pytest.MonkeyPatch.context() as mp:
        _offline(mp, root / "hf_cache")
        yield generate_clear_mini(root / "data", SMALL)


def _load(directory: Path, name: str) -> datasets.Dataset:
    return datasets.load_dataset(str(directory), name, split="train")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- splits, config, resources -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 7, 20, 200])
def test_split_persons_nested_never_empty_and_complementary(n: int) -> None:
    s = split_persons(n)
    assert set(s) == set(_SPLITS)
    assert set(s["forget01"]) <= set(s["forget05"]) <= set(s["forget10"])
    for pct, keep in (("01", "99"), ("05", "95"), ("10", "90")):
        forget, retain = s[f"forget{pct}"], s[f"retain{keep}"]
        assert forget and retain, (pct, forget, retain)
        assert sorted(forget + retain) == list(range(n))
        assert forget == list(range(n - len(forget), n))  # the last persons, as in TOFU


def test_forget_person_count() -> None:
    assert [forget_person_count(200, p) for p in (1, 5, 10)] == [2, 10, 20]
    assert [forget_person_count(3, p) for p in (1, 5, 10)] == [1, 1, 1]
    assert forget_person_count(20, 10) == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_persons", 1),
        ("num_persons", 0),
        ("qa_per_person", 0),
        ("image_size", 8),
        ("num_perturbed", 0),
        ("num_perturbed", 99),
        ("images_per_person", -1),
        ("num_real_world", 2.5),
        ("num_celebrities", True),
    ],
)
def test_invalid_config_names_the_field(field: str, value: object, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=field):
        generate_clear_mini(tmp_path, ClearMiniConfig(**{field: value}))
    assert not (tmp_path / "CLEAR").exists()


def test_revision_is_stable_and_config_sensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    base = revision(ClearMiniConfig())
    assert base == revision(ClearMiniConfig()) and len(base) == 12
    assert revision(ClearMiniConfig(seed=1)) != base
    assert revision(ClearMiniConfig(num_persons=200)) != base
    monkeypatch.setattr(cm, "GENERATOR_VERSION", cm.GENERATOR_VERSION + "-next")
    assert revision(ClearMiniConfig()) != base


def test_idk_answers() -> None:
    answers = load_idk_answers()
    assert len(answers) == 100 and len(set(answers)) == 100
    assert all(a and a == a.strip() and len(a.split()) <= 12 for a in answers)
    assert "I'm not sure." in answers and "I don't have that information." in answers


@pytest.mark.parametrize("size", [32, 64])
def test_drawings_are_deterministic_and_sized(size: int) -> None:
    def draw() -> list[bytes]:
        rng = random.Random(5)
        face = draw_face(random_identity(rng), random_variation(rng), size)
        scene = draw_scene(random_scene(rng), size, rng)
        return [face.tobytes(), scene.tobytes()] + [str(face.size).encode(), str(scene.size).encode()]

    first = draw()
    assert first == draw()
    assert first[2:] == [str((size, size)).encode()] * 2


# --- the snapshots -----------------------------------------------------------------------------------------


def test_every_config_and_column_loads(small: dict[str, Path]) -> None:
    for kind, schema in (("clear", CLEAR_CONFIGS), ("tofu", TOFU_CONFIGS), ("prior", PRIOR_CONFIGS)):
        for name, columns in schema.items():
            ds = _load(small[kind], name)
            assert ds.column_names == columns, (kind, name)
            assert len(ds) > 0, (kind, name)
            if "image" in columns:
                img = ds[0]["image"]
                assert (
                    isinstance(img, Image.Image) and img.size == (SMALL.image_size,) * 2 and img.mode == "RGB"
                )
    default = datasets.load_dataset(str(small["clear"]), split="train")
    assert len(default) == len(_load(small["clear"], "full"))
    for kind in ("clear", "tofu", "prior"):
        assert (small[kind] / "clear_mini.json").is_file()


def test_row_counts_follow_the_splits(small: dict[str, Path]) -> None:
    splits = {"full": list(range(SMALL.num_persons)), **split_persons(SMALL.num_persons)}
    for split, persons in splits.items():
        images, qa = len(persons) * SMALL.images_per_person, len(persons) * SMALL.qa_per_person
        assert len(_load(small["clear"], split)) == images
        assert len(_load(small["tofu"], split)) == qa
        mixed = _load(small["clear"], f"{split}+tofu")
        assert len(mixed) == images + qa
        image_rows, text_rows = mixed.select(range(images)), mixed.select(range(images, images + qa))
        assert all(
            r["question"] is None and r["answer"] is None and r["image"] is not None for r in image_rows
        )
        assert all(r["image"] is None and r["caption"] is None and r["question"] for r in text_rows)
    for split in ("forget01", "forget05", "forget10"):
        assert (
            len(_load(small["clear"], f"{split}_perturbed")) == len(splits[split]) * SMALL.images_per_person
        )
        assert len(_load(small["tofu"], f"{split}_perturbed")) == len(splits[split]) * SMALL.qa_per_person
    assert len(_load(small["clear"], "real_faces")) == SMALL.num_celebrities * SMALL.images_per_celebrity
    assert len(_load(small["clear"], "real_world")) == SMALL.num_real_world
    assert len(_load(small["prior"], "faces")) == SMALL.num_celebrities * SMALL.prior_images_per_celebrity
    assert len(_load(small["prior"], "world")) == SMALL.num_prior_world


def test_forget_and_retain_persons_are_disjoint(small: dict[str, Path]) -> None:
    names = {s: set(_load(small["clear"], s)["name"]) for s in ["full", *_SPLITS]}
    for pct, keep in (("01", "99"), ("05", "95"), ("10", "90")):
        assert names[f"forget{pct}"].isdisjoint(names[f"retain{keep}"])
        assert names[f"forget{pct}"] | names[f"retain{keep}"] == names["full"]
    retain_perturbed = set(_load(small["clear"], "retain_perturbed")["name"])
    assert retain_perturbed <= names["retain90"]
    for q in _load(small["tofu"], "forget01")["question"]:
        assert any(n in q for n in names["forget01"])


def test_perturbed_image_rows(small: dict[str, Path]) -> None:
    for split in ("forget10", "retain"):
        for row in _load(small["clear"], f"{split}_perturbed").remove_columns("image"):
            assert row["name"] in row["caption"] and row["name"] in row["paraphrased_caption"]
            assert row["paraphrased_caption"] != row["caption"]
            assert len(row["perturbed_names"]) == SMALL.num_perturbed == len(set(row["perturbed_names"]))
            assert row["name"] not in row["perturbed_names"]
            assert len(row["perturbed_captions"]) == SMALL.num_perturbed
            assert row["caption"] not in row["perturbed_captions"]
            assert all(row["name"] not in c for c in row["perturbed_captions"])


def test_perturbed_qa_rows(small: dict[str, Path]) -> None:
    for name in ("forget10_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed"):
        rows = _load(small["tofu"], name)
        assert name not in ("real_authors_perturbed", "world_facts_perturbed") or 15 <= len(rows) <= 30
        for row in rows:
            assert len(row["perturbed_answer"]) == SMALL.num_perturbed
            assert row["answer"] not in row["perturbed_answer"]
            assert row["paraphrased_answer"]
            assert len(row["answer"].split()) <= 16


def test_names_are_unique(small: dict[str, Path]) -> None:
    persons = sorted(set(_load(small["clear"], "full")["name"]))
    celebrities = sorted(set(_load(small["clear"], "real_faces")["answer"]))
    holdout = sorted(set(_load(small["clear"], "holdout10_perturbed")["name"]))
    assert len(persons) == SMALL.num_persons and len(celebrities) == SMALL.num_celebrities
    assert len(holdout) == SMALL.num_holdout_persons == forget_person_count(SMALL.num_persons, 10)
    parts = [p for n in persons + celebrities + holdout for p in n.split()]
    assert len(parts) == len(set(parts)) == 2 * (len(persons) + len(celebrities) + len(holdout))


def test_multiple_choice_sets(small: dict[str, Path]) -> None:
    for row in _load(small["clear"], "real_faces").remove_columns("image"):
        assert len(row["options"]) == 4 == len(set(row["options"])) and row["answer"] in row["options"]
    for row in _load(small["clear"], "real_world").remove_columns("image"):
        assert len(row["options"]) == 4 == len(set(row["options"])) and row["answer"] in row["options"]
        assert row["prompt"].startswith(row["question"])
        assert all(
            f"{letter}. {o}" in row["prompt"] for letter, o in zip("ABCD", row["options"], strict=True)
        )


def test_prior_knowledge_is_held_out(small: dict[str, Path]) -> None:
    eval_faces, prior_faces = _load(small["clear"], "real_faces"), _load(small["prior"], "faces")
    assert set(prior_faces["answer"]) == set(eval_faces["answer"])
    assert set(prior_faces["question"]) == {"The name of the person on the image is"}
    eval_pixels = {r["image"].tobytes() for r in eval_faces}
    assert all(r["image"].tobytes() not in eval_pixels for r in prior_faces)
    facts = _load(small["prior"], "facts")
    tofu_real = [
        *_load(small["tofu"], "real_authors_perturbed")["question"],
        *_load(small["tofu"], "world_facts_perturbed")["question"],
    ]
    assert facts["question"] == tofu_real


def test_generation_is_byte_identical_and_seed_sensitive(tmp_path: Path) -> None:
    a = generate_clear_mini(tmp_path / "a", ClearMiniConfig())
    b = generate_clear_mini(tmp_path / "b", ClearMiniConfig())
    c = generate_clear_mini(tmp_path / "c", ClearMiniConfig(seed=1))
    files_a, files_b, files_c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert files_a == files_b
    assert set(files_a) == set(files_c)
    assert (
        files_a["CLEAR/full/train-00000-of-00001.parquet"]
        != files_c["CLEAR/full/train-00000-of-00001.parquet"]
    )
    assert (
        files_a["TOFU/full/train-00000-of-00001.parquet"] != files_c["TOFU/full/train-00000-of-00001.parquet"]
    )
    assert set(a) == set(b) == set(c) == {"clear", "tofu", "prior"}


def test_regenerating_in_place_replaces_and_is_not_served_stale(tmp_path: Path) -> None:
    root = tmp_path / "data"
    tiny = ClearMiniConfig(
        num_persons=3, qa_per_person=2, images_per_person=1, num_real_world=4, num_prior_world=4
    )
    out = generate_clear_mini(root, tiny)
    first = _load(out["tofu"], "full")["answer"]
    out = generate_clear_mini(root, ClearMiniConfig(**{**tiny.__dict__, "seed": 9}))
    assert _load(out["tofu"], "full")["answer"] != first  # datasets keys its cache on dir name + README YAML
    assert sorted(p.name for p in root.iterdir()) == ["CLEAR", "PRIOR", "TOFU"]  # no leftover temp dirs
    assert (
        f'"revision": "{revision(ClearMiniConfig(**{**tiny.__dict__, "seed": 9}))}"'
        in (out["clear"] / "clear_mini.json").read_text()
    )


# inside TOFU (written first: 19 configs); inside CLEAR (after TOFU and PRIOR's 4)
@pytest.mark.parametrize("fail_at", [3, 26])
def test_interrupted_generation_leaves_old_snapshots_or_none(
    fail_at: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = ClearMiniConfig(
        num_persons=3, qa_per_person=2, images_per_person=1, num_real_world=4, num_prior_world=4
    )
    real_write, calls = hf_snapshot._write_parquet, []

    def flaky(rows: list[dict], path: Path) -> dict:
        calls.append(path)
        if len(calls) == fail_at:
            raise RuntimeError("interrupted")
        return real_write(rows, path)

    monkeypatch.setattr(hf_snapshot, "_write_parquet", flaky)
    with pytest.raises(RuntimeError, match="interrupted"):
        generate_clear_mini(tmp_path / "fresh", tiny)
    assert list((tmp_path / "fresh").iterdir()) == []

    monkeypatch.setattr(hf_snapshot, "_write_parquet", real_write)
    before = _files(tmp_path / "old") if generate_clear_mini(tmp_path / "old", tiny) else {}
    calls.clear()
    monkeypatch.setattr(hf_snapshot, "_write_parquet", flaky)
    with pytest.raises(RuntimeError, match="interrupted"):
        generate_clear_mini(tmp_path / "old", ClearMiniConfig(**{**tiny.__dict__, "seed": 4}))
    assert _files(tmp_path / "old") == before
