"""Every option of every config group composes with the real config."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from clear_lightning.config import CONFIG_DIR

OPTIONAL = {"experiment", "debug"}
NOT_GROUPS = {"cv", "hydra"}  # the CV track's own config root; Hydra's launcher presets (test_paper_setup)


def _options() -> list[tuple[str, str]]:
    return [
        (group.name, f.stem)
        for group in sorted(CONFIG_DIR.iterdir())
        if group.is_dir() and group.name not in NOT_GROUPS
        for f in sorted(group.glob("*.yaml"))
    ]


@pytest.mark.parametrize(("group", "option"), _options())
def test_every_option_composes(make_cfg, group: str, option: str) -> None:
    cfg = make_cfg(f"{group}={option}", fast=False)
    assert cfg.stage == "unlearn"
    if group == "method":
        assert cfg.method.name == option and cfg.method._target_.startswith("clear_lightning.methods.")


def test_method_yaml_targets_resolve(make_cfg) -> None:
    from hydra.utils import get_class

    for f in sorted((CONFIG_DIR / "method").glob("*.yaml")):
        cfg = make_cfg(f"method={f.stem}", fast=False)
        cls = get_class(cfg.method._target_)
        assert hasattr(cls, "compute_loss") and isinstance(cls.streams, tuple)


def test_default_is_the_embedded_setup(make_cfg) -> None:
    cfg = make_cfg(fast=False)
    assert (cfg.model.name, cfg.data._target_.rsplit(".", 1)[-1], cfg.trainer.accelerator) == (
        "tiny_llava",
        "ClearMiniSource",
        "cpu",
    )
    assert cfg.logger._target_.endswith("CSVLogger")
    assert instantiate(cfg.model.build).image_size == cfg.data.image_size == 32


def test_run_dir_is_named_from_the_choices(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "config", overrides=["method=ga", "modality=text", "split=forget05"], return_hydra_config=True
        )
    assert cfg.hydra.run.dir.split("/runs/")[1].startswith("tiny_llava/forget05/text/ga/")
