"""The loader reads CLEAR-mini like a hub snapshot; the data module builds the right streams and sets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mini_sizes import small_clear_mini

from clear_lightning.data.batching import GroupedBatchSampler, PairedStreams
from clear_lightning.data.clear_mini import generate_clear_mini
from clear_lightning.data.datamodule import CLEARDataModule
from clear_lightning.data.examples import Example
from clear_lightning.data.source import SnapshotSource
from clear_lightning.errors import ClearConfigError


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cfg = small_clear_mini(num_persons=4, qa_per_person=3, images_per_celebrity=1)
    return generate_clear_mini(tmp_path_factory.mktemp("mini"), cfg)


@pytest.fixture(scope="module")
def source(snapshot: dict[str, Path]) -> SnapshotSource:
    return SnapshotSource("local", str(snapshot["clear"]), str(snapshot["tofu"]), str(snapshot["prior"]))


class _Encoder:
    """Stands in for ExampleEncoder: the data module only needs these members."""

    pad_id, supports_images = 0, True

    def encode(self, example: Example, answer: str | None = None) -> dict:
        return {"input_ids": [1, 2], "labels": [-100, 2], "pixel_values": None, "id": example.id}


def test_plain_snapshot_directory_loads_through_load_dataset(source: SnapshotSource) -> None:
    full = source.load("clear", "full+tofu")
    assert set(full.column_names) == {"image", "caption", "question", "answer"}
    assert len(source.load("clear", "forget10")) == 2  # ceil(10% of 4) = 1 person × 2 images
    assert len(source.revision) == 12


def test_missing_config_and_column_are_named(snapshot: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "CLEAR"
    shutil.copytree(snapshot["clear"], broken)
    src = SnapshotSource("broken", str(broken), str(snapshot["tofu"]))
    with pytest.raises(ClearConfigError, match="'nonexistent' is not a clear config"):
        src.load("clear", "nonexistent")
    import datasets

    ds = datasets.load_dataset(str(broken), "real_world", split="train").remove_columns(["options"])
    from clear_lightning.data.schema import check_columns

    with pytest.raises(ClearConfigError, match=r"lacks column\(s\) \['options'\]"):
        check_columns("clear", "real_world", ds.column_names, str(broken))


def test_missing_path_is_refused_without_side_effects(tmp_path: Path) -> None:
    src = SnapshotSource("x", str(tmp_path / "absent"), str(tmp_path / "absent_tofu"))
    with pytest.raises(ClearConfigError, match="does not exist"):
        src.load("clear", "full")
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize(
    ("modalities", "kinds"),
    [(("text",), {"qa"}), (("visual",), {"caption"}), (("text", "visual"), {"qa", "caption"})],
)
def test_modality_selects_forget_rows(source: SnapshotSource, modalities, kinds) -> None:
    dm = CLEARDataModule(source, _Encoder(), split="forget10", modalities=modalities)
    assert {e.kind for e in dm.forget_examples()} == kinds
    assert {e.kind for e in dm.retain_examples()} == {"qa", "caption"}  # retain is always both


def test_forget_and_retain_persons_are_disjoint(source: SnapshotSource) -> None:
    dm = CLEARDataModule(source, _Encoder(), split="forget10")
    forget_names = {e.answer.split()[0] for e in dm.forget_examples()}
    retain_names = {e.answer.split()[0] for e in dm.retain_examples()}
    assert forget_names and not forget_names & retain_names


def test_unknown_split_and_modality(source: SnapshotSource) -> None:
    with pytest.raises(ClearConfigError, match="unknown split 'forget50'"):
        CLEARDataModule(source, _Encoder(), split="forget50")
    with pytest.raises(ClearConfigError, match="modality=text|visual|both"):
        CLEARDataModule(source, _Encoder(), modalities=("audio",))


def test_paired_streams_anchor_on_forget_and_seed_retain_by_rank() -> None:
    forget = [Example(f"f{i}", "forget", "qa", "q", "a") for i in range(3)]
    retain = [Example(f"r{i}", "retain", "qa", "q", "a") for i in range(50)]

    def draws(seed: int, rank: int) -> list[str]:
        ds = PairedStreams(
            forget, _Encoder(), ("forget", "retain", "idk"), retain, ["I don't know."], seed, rank
        )
        assert len(ds) == 3  # one epoch = one pass over the forget set
        return [ds[i]["retain"]["id"] for i in range(3)] + [ds[i]["forget"]["id"] for i in range(3)]

    assert draws(0, 0) == draws(0, 0)
    assert draws(0, 0)[:3] != draws(0, 1)[:3]
    assert draws(0, 0)[3:] == ["f0", "f1", "f2"]
    with pytest.raises(ValueError, match="needs a retain stream"):
        PairedStreams(forget, _Encoder(), ("forget", "retain"))


def test_grouped_batches_never_mix_modalities_and_split_across_ranks() -> None:
    groups = ["text"] * 10 + ["visual"] * 7
    sampler = GroupedBatchSampler(groups, batch_size=4, seed=0)
    batches = list(sampler)
    assert all(len({groups[i] for i in b}) == 1 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(17))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    ranks = [list(GroupedBatchSampler(groups, 4, seed=0, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) and not {tuple(b) for b in ranks[0]} & {tuple(b) for b in ranks[1]}


def test_batch_by_modality_keeps_unlearning_batches_apart(source: SnapshotSource) -> None:
    """`model.batch_by_modality` (Mllama: image inputs read by row): every unlearning batch is of one modality,
    its retain rows of that modality too; each forget row once per epoch, as without it."""
    dm = CLEARDataModule(
        source,
        _Encoder(),
        split="forget10",
        batch_size=2,
        streams=("forget", "retain"),
        batch_by_modality=True,
    )
    forget, retain = dm.forget_examples(), dm.retain_examples()
    assert {e.modality for e in forget} == {"text", "visual"}
    modality = {e.id: e.modality for e in forget + retain}
    loader = dm.train_dataloader()
    assert isinstance(loader.batch_sampler, GroupedBatchSampler)
    batches = list(loader.batch_sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(forget)))
    for b in batches:
        items = [loader.dataset[i] for i in b]
        kinds = {modality[it[s]["id"]] for it in items for s in ("forget", "retain")}
        assert len(kinds) == 1, kinds
    mixed = CLEARDataModule(source, _Encoder(), split="forget10", batch_size=2).train_dataloader()
    assert not isinstance(
        mixed.batch_sampler, GroupedBatchSampler
    )  # the default: forget rows shuffled together


def test_evaluation_sets_have_paraphrase_and_wrong_options(source: SnapshotSource) -> None:
    dm = CLEARDataModule(
        source,
        _Encoder(),
        eval_sets=[
            "forget_qa",
            "forget_face_name",
            "real_faces",
            "real_world",
            "holdout_qa",
            "holdout_face_name",
        ],
    )
    sets = dm.evaluation_sets()
    assert dm.skipped_sets == {}
    for name in ("forget_qa", "holdout_qa"):
        qa = sets[name][0]
        assert qa.paraphrased and len(qa.perturbed) == 5 and qa.person == f"{name.split('_')[0]}/0"
    for name in ("forget_face_name", "real_faces", "real_world", "holdout_face_name"):
        for ex in sets[name]:
            assert (
                ex.answer not in ex.perturbed and ex.image is not None
            )  # correct answer never counted twice
