"""Person ids on evaluation Examples and records: the unit a person-level bootstrap resamples."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import datasets
import pytest
from mini_sizes import generated_source, small_clear_mini
from real_snapshot import FORGET, QA_PER_PERSON, RETAIN, write_real_like

from clear_lightning.data.clear_mini import split_persons
from clear_lightning.data.datamodule import CLEARDataModule
from clear_lightning.data.examples import Example, persons_of_names
from clear_lightning.data.source import SnapshotSource
from clear_lightning.evaluation.module import _record

CFG = small_clear_mini(
    num_persons=30,  # forget01 = 1, forget05 = 2, forget10 = 3 persons; retain_perturbed = 20 persons
    qa_per_person=4,
    images_per_celebrity=2,
    num_prior_looks=4,
)
GROUPS = ("forget", "retain", "holdout")
TASKS = ("qa", "caption", "face_name")
ALL_SETS = [f"{g}_{t}" for g in GROUPS for t in TASKS] + [
    "real_faces",
    "real_world",
    "real_authors",
    "world_facts",
]


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnapshotSource]:
    with generated_source(tmp_path_factory.mktemp("mini_persons"), CFG) as source:
        yield source


class _Encoder:
    pad_id, supports_images = 0, True


def _sets(source: SnapshotSource, split: str = "forget10", **kw) -> dict[str, list[Example]]:
    return CLEARDataModule(source, _Encoder(), split=split, eval_sets=ALL_SETS, **kw).evaluation_sets()


def test_persons_of_names_follow_first_appearance() -> None:
    assert persons_of_names("forget", ["B", "B", "A", "B", "C"]) == [
        "forget/0",
        "forget/0",
        "forget/1",
        "forget/0",
        "forget/2",
    ]


@pytest.mark.parametrize("split", ["forget01", "forget05", "forget10"])
def test_every_item_has_a_person_shared_across_its_groups_sets(mini: SnapshotSource, split: str) -> None:
    sets = _sets(mini, split)
    assert set(sets) == set(ALL_SETS)
    assert all(e.person for items in sets.values() for e in items)
    n_forget = len(split_persons(CFG.num_persons)[split])
    expected = {"forget": n_forget, "holdout": n_forget, "retain": 20}
    for group in GROUPS:
        per_task = {t: Counter(e.person for e in sets[f"{group}_{t}"]) for t in TASKS}
        persons = {f"{group}/{k}" for k in range(expected[group])}
        assert all(set(c) == persons for c in per_task.values()), group  # the same ids in all three sets
        assert all(n == CFG.qa_per_person for n in per_task["qa"].values())  # each person has all their items
        assert all(n == CFG.images_per_person for n in per_task["caption"].values())
        assert per_task["caption"] == per_task["face_name"]


@pytest.mark.parametrize("group", GROUPS)
def test_a_person_id_names_one_person_in_qa_captions_and_faces(mini: SnapshotSource, group: str) -> None:
    """The ordering assumption (k-th block of QA rows = k-th distinct name of the image rows) holds in CLEAR-mini:
    every QA question of person k names the person that person k's faces show."""
    sets = _sets(mini)
    name_of: dict[str, str] = {}
    for e in sets[f"{group}_face_name"]:
        assert name_of.setdefault(e.person, e.answer) == e.answer  # one name per id
    assert len(set(name_of.values())) == len(name_of)  # one id per name
    for e in sets[f"{group}_caption"]:
        assert name_of[e.person] in e.answer
    for e in sets[f"{group}_qa"]:
        assert name_of[e.person] in e.question and name_of[e.person] in e.answer


def test_each_forget_person_has_their_items(mini: SnapshotSource) -> None:
    sets = _sets(mini)
    forget_names = list(dict.fromkeys(mini.load("clear", "forget10")["name"]))
    by_person = {e.person: e.answer for e in sets["forget_face_name"]}
    assert sorted(by_person.values()) == sorted(forget_names)
    for person, name in by_person.items():
        qa = [e for e in sets["forget_qa"] if e.person == person]
        assert len(qa) == CFG.qa_per_person and all(name in e.question for e in qa)
        # no item of this person is filed under another id
        assert not [e for e in sets["forget_qa"] if name in e.question and e.person != person]


def test_real_sets_person_units(mini: SnapshotSource) -> None:
    sets = _sets(mini)
    assert all(e.person == e.answer for e in sets["real_faces"])  # the celebrity
    assert len({e.person for e in sets["real_faces"]}) == CFG.num_celebrities
    for name in ("real_world", "real_authors", "world_facts"):  # each item its own unit
        assert [e.person for e in sets[name]] == [e.id for e in sets[name]]


def test_persons_survive_the_item_cap(mini: SnapshotSource) -> None:
    capped = CLEARDataModule(mini, _Encoder(), eval_sets=["forget_qa"], max_eval_items=5).evaluation_sets()
    full = _sets(mini)["forget_qa"][:5]
    assert [e.person for e in capped["forget_qa"]] == [e.person for e in full]


def test_real_layout_persons_from_tofu_blocks_and_clear_names(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    clear, tofu = write_real_like(tmp_path)
    source = SnapshotSource("clear", str(clear), str(tofu), qa_per_person=QA_PER_PERSON)
    sets = CLEARDataModule(
        source, _Encoder(), eval_sets=[f"{g}_{t}" for g in ("forget", "retain") for t in TASKS]
    ).evaluation_sets()
    for group, persons in (("forget", FORGET["forget10"]), ("retain", RETAIN["retain90"])):
        names = {e.person: e.answer for e in sets[f"{group}_face_name"]}
        assert list(names.values()) == persons
        for e in sets[f"{group}_qa"]:
            assert e.answer.startswith(names[e.person])
    assert SnapshotSource("clear", str(clear), str(tofu)).qa_per_person == 20  # TOFU: 20 QA per author


def test_record_carries_the_person() -> None:
    example = Example(
        "forget_qa/3", "forget_qa", "qa", "Q?", "A.", None, "A!", ("B.", "C."), person="forget/1"
    )
    row = {
        "index": 3,
        "loss": 0.5,
        "loss_paraphrased": 0.6,
        "losses_perturbed": [1.0, 2.0],
    }
    record = _record(row, example, "A.", 1.0, "arithmetic")
    assert record["person"] == "forget/1" and record["id"] == "forget_qa/3"
    assert math.isfinite(record["truth_ratio"])
    assert (
        _record(row, Example("x", "s", "qa", "Q?", "A.", perturbed=("B.",)), "", 0.0, "arithmetic")["person"]
        is None
    )
