"""Damaged data is refused by `SnapshotSource.validate` with the config, file and row named, and a fix.

Each test copies a small generated CLEAR-mini (or the real-layout stand-in of `real_snapshot`) into tmp_path,
damages it the way a reliability review found it damaged (a truncated parquet file, bytes that are not an image,
a column dropped from a file whose README still declares it, a config folder deleted while the README still
lists it) and checks the one error the validation raises before anything is trained.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from real_snapshot import write_real_like

from clear_lightning.data import source as source_module
from clear_lightning.data.schema import readme_configs
from clear_lightning.data.source import ClearMiniSource, SnapshotSource
from clear_lightning.errors import ClearConfigError

SIZES = dict(
    num_persons=4,
    qa_per_person=2,
    images_per_person=2,
    image_size=16,
    num_celebrities=2,
    images_per_celebrity=1,
    num_real_world=2,
    num_perturbed=2,
    prior_images_per_celebrity=1,
    num_prior_world=2,
    num_prior_looks=2,
)
SHARD = "train-00000-of-00001.parquet"


@pytest.fixture(scope="module", autouse=True)
def datasets_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Validation stamps and `datasets` caches of these tests stay in a temporary directory."""
    cache = tmp_path_factory.mktemp("hf_datasets")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        yield cache


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, datasets_cache: Path) -> Path:
    """One generated CLEAR-mini (clear_mini-<rev>/{CLEAR,TOFU,PRIOR}), copied by each test before damaging it."""
    return ClearMiniSource(str(tmp_path_factory.mktemp("mini")), **SIZES).snapshot_root


@pytest.fixture
def mini(generated: Path, tmp_path: Path) -> ClearMiniSource:
    """A private copy of the generated snapshot, read as the pipeline reads it (found, not regenerated)."""
    shutil.copytree(generated, tmp_path / generated.name)
    source = ClearMiniSource(str(tmp_path), **SIZES)
    assert source.snapshot_root == tmp_path / generated.name
    return source


def _rewrite(file: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    """Rewrite one parquet file through pyarrow (its schema metadata, the HF features, kept)."""
    pq.write_table(change(pq.read_table(file)), file)


def _with_image(row: int, data: bytes) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        images = table.column("image").to_pylist()
        images[row] = {"bytes": data, "path": None}
        column = pa.array(images, type=table.schema.field("image").type)
        return table.set_column(table.schema.get_field_index("image"), "image", column)

    return change


def _refusal(source: SnapshotSource) -> ClearConfigError:
    with pytest.raises(ClearConfigError) as err:
        source.validate()
    assert "\n  fix: " in str(err.value)
    return err.value


def _regenerate_fix(err: ClearConfigError, source: ClearMiniSource) -> None:
    assert f"delete {source.snapshot_root} and run again" in err.fix


def test_a_clean_copy_validates(mini: ClearMiniSource) -> None:
    counts = mini.validate()
    assert counts["clear"]["full"] == 8 and counts["tofu"]["full"] == 8
    assert mini._validation_stamp().exists()


def test_a_truncated_parquet_file_is_named(mini: ClearMiniSource) -> None:
    file = Path(mini.locations["clear"]) / "forget10" / SHARD
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])  # an interrupted download or copy
    err = _refusal(mini)
    assert str(err).splitlines()[0].endswith("has missing or damaged files:")
    assert (
        f"clear: config 'forget10' file {file} is not a readable parquet file (ArrowInvalid:" in err.problem
    )
    _regenerate_fix(err, mini)
    assert not mini._validation_stamp().exists()


def test_bytes_that_are_no_image_name_the_row_and_file(mini: ClearMiniSource) -> None:
    full = Path(mini.locations["clear"]) / "full" / SHARD
    _rewrite(full, _with_image(1, b"these bytes are not an image"))
    perturbed = Path(mini.locations["clear"]) / "forget10_perturbed" / SHARD
    png = pq.read_table(perturbed).column("image")[1].as_py()["bytes"]
    _rewrite(perturbed, _with_image(1, png[:-20]))  # a PNG cut short: its header still reads
    err = _refusal(mini)
    assert (
        f"clear: config 'full' row 1 (0-based) of {full} does not decode as an image "
        "(not in an image format PIL knows)" in err.problem
    )
    assert (
        f"clear: config 'forget10_perturbed' row 1 (0-based) of {perturbed} does not decode as an image ("
        in err.problem
    )
    _regenerate_fix(err, mini)


def test_a_column_dropped_from_a_file_is_named_though_the_readme_declares_it(mini: ClearMiniSource) -> None:
    clear = Path(mini.locations["clear"])
    file = clear / "forget10_perturbed" / SHARD
    _rewrite(file, lambda table: table.drop_columns(["perturbed_names"]))
    assert "perturbed_names" in (clear / "README.md").read_text()  # still declared: `datasets` fills in None
    err = _refusal(mini)
    assert f"clear: config 'forget10_perturbed' lacks column(s) ['perturbed_names'] in {file}" in err.problem
    _regenerate_fix(err, mini)


def test_a_deleted_config_folder_the_readme_still_lists_is_named(mini: ClearMiniSource) -> None:
    tofu = Path(mini.locations["tofu"])
    shutil.rmtree(tofu / "world_facts_perturbed")
    err = _refusal(mini)
    assert (
        f"tofu: config 'world_facts_perturbed' is listed in {tofu / 'README.md'}, but no file in {tofu} "
        f"matches ['world_facts_perturbed/{SHARD}']" in err.problem
    )
    _regenerate_fix(err, mini)


def test_a_stamp_of_fewer_checks_does_not_skip_these(mini: ClearMiniSource, monkeypatch) -> None:
    """A snapshot an older version validated (and stamped) is checked again for the damage it let pass."""
    file = Path(mini.locations["clear"]) / "forget10_perturbed" / SHARD
    _rewrite(file, lambda table: table.drop_columns(["perturbed_names"]))
    with monkeypatch.context() as old:
        old.setattr(source_module, "VALIDATION_CHECKS", "contract/1")
        stale = mini._validation_stamp()
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_text('{"clear": {}}')  # "passed", as the column check through `datasets` said
        assert mini.validate() == {"clear": {}}
    assert mini._validation_stamp() != stale
    assert "lacks column(s) ['perturbed_names']" in _refusal(mini).problem


def test_real_layout_shards_and_lfs_pointers_are_checked_file_by_file(tmp_path: Path) -> None:
    """The hub layout: a README `configs:` block with glob patterns over folders of parquet shards."""
    clear, tofu = write_real_like(tmp_path)
    folder = clear / "forget10_tofu"  # config forget10+tofu, listed as `forget10_tofu/train-*`
    table = pq.read_table(folder / SHARD)
    (folder / SHARD).unlink()
    first, second = folder / "train-00000-of-00002.parquet", folder / "train-00001-of-00002.parquet"
    pq.write_table(table.slice(0, 3), first)
    pq.write_table(_with_image(1, b"GIF89a, but no more")(table.slice(3)), second)
    pointer = tofu / "full" / SHARD  # a clone made without git-lfs holds pointers, not parquet
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1234\n")
    err = _refusal(SnapshotSource("clear", str(clear), str(tofu)))
    assert (
        f"clear: config 'forget10+tofu' row 1 (0-based) of {second} does not decode as an image"
        in err.problem
    )
    assert str(first) not in err.problem
    assert (
        f"tofu: config 'full' file {pointer} is not a readable parquet file (a git-lfs pointer" in err.problem
    )
    assert "re-download the configs named above" in err.fix and str(clear / "README.md") in err.fix


def test_readme_configs_reads_the_hub_forms_of_data_files(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: a\n  data_files: a/*.parquet\n"
        "- config_name: b\n  data_dir: data\n  data_files:\n  - split: test\n    path: b/test-*\n"
        "  - split: train\n    path: [b/train-0*, b/train-1*]\n"
        "- config_name: c\n  data_files:\n  - split: test\n    path: c/*\n"
        "- config_name: d\n  data_dir: d\n"
        "- config_name: e\n  data_files: hf://datasets/x/y/e/*.parquet\n"
        "- config_name: f\n  data_files:\n    train: f/train-*\n    test: f/test-*\n"
        "---\n# title\n"
    )
    assert readme_configs(tmp_path) == {
        "a": ["a/*.parquet"],
        "b": ["data/b/train-0*", "data/b/train-1*"],
        "c": [],  # no train split: reported
        "d": None,  # no data_files, or not a local path: `datasets` finds the files alone
        "e": None,
        "f": ["f/train-*"],
    }
    (tmp_path / "README.md").write_text("# no front matter\n")
    assert readme_configs(tmp_path) is None


def test_the_pipeline_refuses_damaged_data_before_building_anything(make_cfg, tmp_path: Path) -> None:
    clear, tofu = write_real_like(tmp_path)
    (clear / "real_faces" / SHARD).write_bytes(b"PAR1")
    cfg = make_cfg("data=clear", f"data.path={clear}", f"data.tofu_path={tofu}", "stage=eval", fast=False)
    from clear_lightning.pipeline import run

    before = sorted(Path(cfg.paths.artifacts).glob("*/*/artifact.json"))
    with pytest.raises(ClearConfigError, match=r"clear: config 'real_faces' file .* not a readable parquet"):
        run(cfg)
    assert sorted(Path(cfg.paths.artifacts).glob("*/*/artifact.json")) == before
