"""Holdout persons: generated like every other person, in no training set, exposed as the DataModule's holdout
split and scored as holdout_qa / holdout_caption / holdout_face_name; optional for the real data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import datasets
import pytest
import yaml
from mini_sizes import small_clear_mini
from real_snapshot import HOLDOUT, HOLDOUT_PERSONS, QA_PER_PERSON, write_real_like

from clear_lightning.contract import CLEAR_SCHEMA, TOFU_SCHEMA
from clear_lightning.data.clear_mini import (
    ClearMiniConfig,
    generate_clear_mini,
    holdout_persons,
    split_persons,
)
from clear_lightning.data.corpus import corpus
from clear_lightning.data.datamodule import CLEARDataModule
from clear_lightning.data.examples import Example, prior_examples, training_examples
from clear_lightning.data.mini_config import forget_person_count
from clear_lightning.data.schema import is_optional
from clear_lightning.data.source import ClearMiniSource, SnapshotSource
from clear_lightning.errors import ClearConfigError

HOLDOUT_SETS = ["holdout_qa", "holdout_caption", "holdout_face_name"]
CFG = small_clear_mini(
    num_persons=20,  # forget01/05 = 1 person, forget10 = 2 persons -> 2 holdout persons
    qa_per_person=3,
    images_per_celebrity=1,
    num_prior_looks=4,
)
SPLITS = ("forget01", "forget05", "forget10")


def _offline(mp: pytest.MonkeyPatch, cache: Path) -> None:
    mp.setenv("HF_DATASETS_OFFLINE", "1")
    mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    mp.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnapshotSource]:
    root = tmp_path_factory.mktemp("mini_holdout")
    with pytest.MonkeyPatch.context() as mp:
        _offline(mp, root / "hf_cache")
        out = generate_clear_mini(root / "data", CFG)
        yield SnapshotSource(
            "mini",
            str(out["clear"]),
            str(out["tofu"]),
            str(out["prior"]),
            image_tasks=("caption", "face_name"),
            qa_per_person=CFG.qa_per_person,
        )


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch, tmp_path / "hf_cache")


class _Encoder:
    pad_id, supports_images = 0, True


def _names(source: SnapshotSource, config: str = "holdout10_perturbed") -> list[str]:
    return list(dict.fromkeys(source.load("clear", config)["name"]))


# --- the generator --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 7, 20, 200])
def test_holdout_size_defaults_to_forget10(n: int) -> None:
    cfg = ClearMiniConfig(num_persons=n)
    assert cfg.num_holdout_persons == len(split_persons(n)["forget10"])
    assert ClearMiniConfig(num_persons=200).num_holdout_persons == forget_person_count(200, 10) == 20
    sizes = {k: len(v) for k, v in holdout_persons(n, cfg.num_holdout_persons).items()}
    assert sizes == {f"holdout{p}": len(split_persons(n)[f"forget{p}"]) for p in ("01", "05", "10")}
    assert ClearMiniConfig(num_persons=n, num_holdout_persons=3).num_holdout_persons == 3


def test_holdout_sets_nest_and_holdout10_holds_every_holdout_person() -> None:
    assert holdout_persons(200, 5) == {
        "holdout01": [0, 1],
        "holdout05": list(range(5)),
        "holdout10": list(range(5)),
    }
    assert holdout_persons(20, 4) == {"holdout01": [0], "holdout05": [0], "holdout10": list(range(4))}
    with pytest.raises(ValueError, match="num_holdout_persons"):
        ClearMiniConfig(num_holdout_persons=0)


def test_a_full_size_source_still_builds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """data.num_persons=200 (conf/data/clear_mini.yaml sizes otherwise): the config and its revision resolve."""
    config = ClearMiniConfig(num_persons=200)
    assert config.num_holdout_persons == 20
    monkeypatch.setattr("clear_lightning.data.clear_mini.generate_clear_mini", lambda root, cfg: None)
    (tmp_path / "x").mkdir()
    source = ClearMiniSource(str(tmp_path / "x"), num_persons=200)
    assert source.config.num_holdout_persons == 20
    assert source.identity()["config"]["num_holdout_persons"] == 20


def test_holdout_configs_follow_the_real_layout(mini: SnapshotSource) -> None:
    for split in SPLITS:
        holdout = "holdout" + split.removeprefix("forget")
        persons = len(holdout_persons(CFG.num_persons, CFG.num_holdout_persons)[holdout])
        assert persons == len(split_persons(CFG.num_persons)[split])  # as large as the forget set
        qa, qa_p = mini.load("tofu", holdout), mini.load("tofu", f"{holdout}_perturbed")
        images = mini.load("clear", f"{holdout}_perturbed")
        assert qa.column_names == ["question", "answer"]  # TOFU's holdout configs
        assert qa_p.column_names == list(mini.load("tofu", f"{split}_perturbed").column_names)
        assert images.column_names == list(mini.load("clear", f"{split}_perturbed").column_names)
        assert len(qa) == len(qa_p) == persons * CFG.qa_per_person
        assert len(images) == persons * CFG.images_per_person
        assert qa["question"] == qa_p["question"] and qa["answer"] == qa_p["answer"]
    assert set(_names(mini, "holdout01_perturbed")) <= set(_names(mini, "holdout05_perturbed"))
    assert set(_names(mini, "holdout05_perturbed")) <= set(_names(mini))
    for row in mini.load("clear", "holdout10_perturbed").remove_columns("image"):
        assert row["name"] in row["caption"] and row["name"] in row["paraphrased_caption"]
        assert row["name"] not in row["perturbed_names"] and len(set(row["perturbed_names"])) == 5
        assert all(row["name"] not in c for c in row["perturbed_captions"])
    for row in mini.load("tofu", "holdout10_perturbed"):
        assert row["answer"] not in row["perturbed_answer"] and row["paraphrased_answer"]


def test_readme_configs_blocks_list_every_config_and_document_the_additions(mini: SnapshotSource) -> None:
    for collection in ("clear", "tofu"):
        root = Path(mini.locations[collection])
        text = (root / "README.md").read_text()
        front = yaml.safe_load(text.split("---\n")[1])
        listed = {c["config_name"] for c in front["configs"]}
        on_disk = {p.parent.name for p in root.glob("*/train-00000-of-00001.parquet")}
        assert listed == on_disk == {c["config_name"] for c in front["dataset_info"]}
        assert {"holdout01_perturbed", "holdout05_perturbed", "holdout10_perturbed"} <= listed
        assert "holdout10_perturbed" in text.split("---\n", 2)[2] and "addition" in text
        if collection == "tofu":
            assert {"holdout01", "holdout05", "holdout10"} <= listed


def test_adding_holdout_persons_changes_no_training_data(tmp_path: Path) -> None:
    small = dict(num_persons=4, qa_per_person=2, images_per_person=1, num_real_world=4, num_prior_world=4)
    a = generate_clear_mini(tmp_path / "a", ClearMiniConfig(**small, num_holdout_persons=1))
    b = generate_clear_mini(tmp_path / "b", ClearMiniConfig(**small, num_holdout_persons=3))
    for kind, configs in (("clear", ("full", "full+tofu", "forget10_perturbed")), ("tofu", ("full",))):
        for config in configs:
            file = f"{config}/train-00000-of-00001.parquet"
            assert (a[kind] / file).read_bytes() == (b[kind] / file).read_bytes(), (kind, config)


# --- never trained on -----------------------------------------------------------------------------


def _training_texts(source: SnapshotSource) -> list[str]:
    """Every string of every training set: full+tofu, forgetNN+tofu, retainNN+tofu (and their face-name rows),
    plain full/forgetNN/retainNN in CLEAR and TOFU, and the prior knowledge."""
    texts: list[str] = []
    for split in ("full", *SPLITS, "retain99", "retain95", "retain90"):
        for ex in training_examples(source, f"{split}+tofu", 0, image_tasks=("caption", "face_name")):
            texts += [ex.question, ex.answer]
        for collection, columns in (("clear", ("caption", "name")), ("tofu", ("question", "answer"))):
            ds = source.load(collection, split)
            texts += [t for c in columns for t in ds[c]]
    for ex in prior_examples(source):
        texts += [ex.question, ex.answer]
    return texts


def test_no_holdout_person_is_in_any_training_set(mini: SnapshotSource) -> None:
    names = _names(mini)
    assert len(names) == CFG.num_holdout_persons == 2
    texts = _training_texts(mini)
    blob = "\n".join(texts)
    for name in names:
        assert name not in blob
        assert all(part not in blob for part in name.split())  # not even a first or last name
    holdout_qa = mini.load("tofu", "holdout10_perturbed")
    seen = set(texts)
    for row in holdout_qa:
        assert row["question"] not in seen and row["answer"] not in seen
    training_names = set(mini.load("clear", "full")["name"])
    assert training_names.isdisjoint(names)
    # and no training image is a holdout face
    holdout_pixels = {r["image"].tobytes() for r in mini.load("clear", "holdout10_perturbed")}
    assert all(r["image"].tobytes() not in holdout_pixels for r in mini.load("clear", "full"))


def test_training_streams_of_the_datamodule_never_hold_a_holdout_person(mini: SnapshotSource) -> None:
    names = _names(mini)
    for split in SPLITS:
        dm = CLEARDataModule(mini, _Encoder(), split=split, image_tasks=("caption", "face_name"))
        rows = dm.forget_examples() + dm.retain_examples()
        assert not any(n in e.question or n in e.answer for e in rows for n in names)


def test_the_tokenizer_corpus_sees_holdout_names_like_forget_names(mini: SnapshotSource) -> None:
    """Not a training set: a real tokenizer treats unseen names alike, so the tiny one must as well."""
    texts = corpus(mini)
    assert all(any(n in t for t in texts) for n in _names(mini))


# --- the DataModule's holdout split and evaluation sets -------------------------------------------


def test_datamodule_exposes_the_holdout_split(mini: SnapshotSource) -> None:
    names = _names(mini)
    for split in SPLITS:
        dm = CLEARDataModule(mini, _Encoder(), split=split, image_tasks=("caption", "face_name"))
        assert dm.holdout_split == "holdout" + split.removeprefix("forget")
        rows = dm.holdout_examples()
        assert {e.set for e in rows} == {"holdout"}
        assert {e.kind for e in rows} == {"qa", "caption", "face_name"}
        persons = len(split_persons(CFG.num_persons)[split])
        kinds = [e.kind for e in rows]
        assert kinds.count("qa") == persons * CFG.qa_per_person
        assert kinds.count("caption") == kinds.count("face_name") == persons * CFG.images_per_person
        assert {e.answer for e in rows if e.kind == "face_name"} <= set(names)
        assert len({e.id for e in rows}) == len(rows)
    text = CLEARDataModule(mini, _Encoder(), modalities=("text",)).holdout_examples()
    assert {e.kind for e in text} == {"qa"}
    only_text = CLEARDataModule(mini, _Encoder(), text_only=True, modalities=("text",)).holdout_examples()
    assert all(e.image is None for e in only_text)


def test_holdout_eval_sets_load_like_the_forget_sets(mini: SnapshotSource) -> None:
    for split in SPLITS:
        sets = [f"{g}_{t}" for g in ("forget", "holdout") for t in ("qa", "caption", "face_name")]
        dm = CLEARDataModule(mini, _Encoder(), split=split, eval_sets=sets)
        ev = dm.evaluation_sets()
        assert dm.skipped_sets == {} and set(ev) == set(sets)
        for task in ("qa", "caption", "face_name"):
            forget, holdout = ev[f"forget_{task}"], ev[f"holdout_{task}"]
            assert len(holdout) == len(forget)  # holdoutNN is as large as forgetNN
            assert {e.kind for e in holdout} == {e.kind for e in forget}
            for e in holdout:
                assert e.set == f"holdout_{task}" and e.id.startswith(f"holdout_{task}/")
                assert e.perturbed and e.answer not in e.perturbed
                assert (e.paraphrased is not None) == (task != "face_name")
                assert (e.image is None) == (task == "qa")


def test_default_eval_config_scores_the_holdout_sets() -> None:
    conf = yaml.safe_load((Path(__file__).parents[1] / "conf" / "eval" / "default.yaml").read_text())
    assert set(HOLDOUT_SETS) <= set(conf["sets"])


def test_text_only_model_skips_visual_holdout_sets_with_the_reason(mini: SnapshotSource) -> None:
    dm = CLEARDataModule(mini, _Encoder(), modalities=("text",), text_only=True, eval_sets=HOLDOUT_SETS)
    assert set(dm.evaluation_sets()) == {"holdout_qa"}
    assert set(dm.skipped_sets) == {"holdout_caption", "holdout_face_name"}
    assert all("text-only" in why for why in dm.skipped_sets.values())


# --- the real data: holdout configs are optional ---------------------------------------------------


def test_schema_lists_holdout_configs_as_optional() -> None:
    for config in ("holdout01", "holdout05", "holdout10"):
        assert TOFU_SCHEMA[config] == ("question", "answer") and is_optional("tofu", config)
        assert is_optional("tofu", f"{config}_perturbed") and is_optional("clear", f"{config}_perturbed")
        assert CLEAR_SCHEMA[f"{config}_perturbed"] == CLEAR_SCHEMA["forget10_perturbed"]
    assert not is_optional("tofu", "forget10_perturbed") and not is_optional("clear", "full")


def test_real_snapshot_without_holdout_validates_and_skips_the_holdout_sets(tmp_path: Path) -> None:
    clear, tofu = write_real_like(tmp_path)
    source = SnapshotSource("clear", str(clear), str(tofu), qa_per_person=QA_PER_PERSON)
    counts = source.validate()  # benchmark.md §2 validation does not require holdout configs
    assert "holdout10" not in counts["tofu"]
    dm = CLEARDataModule(source, _Encoder(), eval_sets=["forget_qa", *HOLDOUT_SETS])
    assert set(dm.skipped_sets) == set(HOLDOUT_SETS)  # known before (and without) building any item
    assert dm._eval is None
    assert set(dm.evaluation_sets()) == {"forget_qa"}
    assert set(dm.skipped_sets) == set(HOLDOUT_SETS)
    assert "no holdout persons" in dm.skipped_sets["holdout_qa"]
    assert "therem/CLEAR has none" in dm.skipped_sets["holdout_caption"]
    with pytest.raises(ClearConfigError, match="no holdout persons"):
        dm.holdout_examples()
    assert corpus(source)  # the tiny tokenizer's corpus reads optional configs only where they exist


def test_real_snapshot_with_tofu_holdout_configs(tmp_path: Path) -> None:
    clear, tofu = write_real_like(tmp_path, holdout=True)
    source = SnapshotSource("clear", str(clear), str(tofu), qa_per_person=QA_PER_PERSON)
    counts = source.validate()
    assert {k: counts["tofu"][k] for k in HOLDOUT} == {k: len(v) * QA_PER_PERSON for k, v in HOLDOUT.items()}
    for split in SPLITS:
        dm = CLEARDataModule(source, _Encoder(), split=split, modalities=("text",), eval_sets=HOLDOUT_SETS)
        rows = dm.holdout_examples()  # TOFU's holdoutNN: the non-members of membership inference
        expected = HOLDOUT[dm.holdout_split]
        assert [e.answer.split(" was ")[0] for e in rows[::QA_PER_PERSON]] == expected
        assert [e.person for e in rows] == [f"holdout/{i // QA_PER_PERSON}" for i in range(len(rows))]
        assert all(e.kind == "qa" and e.set == "holdout" for e in rows)
        # question/answer only: no truth ratio for holdout_qa, and CLEAR has no holdout images
        assert dm.evaluation_sets() == {}
        assert "paraphrased / perturbed" in dm.skipped_sets["holdout_qa"]
        assert "holdout_examples" in dm.skipped_sets["holdout_qa"]
        assert "no holdout persons" in dm.skipped_sets["holdout_face_name"]
    with pytest.raises(ClearConfigError, match="no rows of modalities"):
        CLEARDataModule(source, _Encoder(), modalities=("visual",)).holdout_examples()
    assert set(HOLDOUT_PERSONS).isdisjoint(source.load("clear", "full")["name"])


def test_real_snapshot_holdout_with_perturbed_columns_is_scored(tmp_path: Path) -> None:
    """Should a TOFU revision give its holdout configs paraphrased and perturbed answers, they are used."""
    from real_snapshot import _perturbed_qa, clear_tables, tofu_tables, write_snapshot

    tables = tofu_tables(holdout=True)
    tables["holdout10"] = _perturbed_qa(tables["holdout10"])
    clear = write_snapshot(tmp_path / "CLEAR", clear_tables())
    tofu = write_snapshot(tmp_path / "TOFU", tables)
    source = SnapshotSource("clear", str(clear), str(tofu), qa_per_person=QA_PER_PERSON)
    dm = CLEARDataModule(source, _Encoder(), eval_sets=["holdout_qa"])
    items = dm.evaluation_sets()["holdout_qa"]
    assert len(items) == len(HOLDOUT["holdout10"]) * QA_PER_PERSON
    assert all(e.paraphrased and e.perturbed for e in items)


def test_a_holdout_config_with_missing_columns_is_reported(tmp_path: Path) -> None:
    clear, tofu = write_real_like(tmp_path, holdout=True, tofu={"drop_columns": {"holdout10": ["answer"]}})
    with pytest.raises(ClearConfigError, match=r"config 'holdout10' lacks column\(s\) \['answer'\]"):
        SnapshotSource("clear", str(clear), str(tofu)).validate()


def test_holdout_records_are_examples_with_persons(mini: SnapshotSource) -> None:
    dm = CLEARDataModule(mini, _Encoder(), eval_sets=HOLDOUT_SETS)
    for items in dm.evaluation_sets().values():
        assert all(isinstance(e, Example) and e.person and e.person.startswith("holdout/") for e in items)
