"""Every option of every config group composes with the real config and is instantiated by the composition root."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from clear_lightning.config import CONFIG_DIR, options
from clear_lightning.pipeline.compose import assemble

OPTIONAL = {"experiment", "debug"}
NOT_GROUPS = {"cv", "hydra"}  # the CV track's own config root; Hydra's launcher presets (test_paper_setup)


def _options() -> list[tuple[str, str]]:
    return [
        (group.name, option)
        for group in sorted(CONFIG_DIR.iterdir())
        if group.is_dir() and group.name not in NOT_GROUPS
        for option in options(group.name)
    ]


@pytest.mark.parametrize(("group", "option"), _options())
def test_every_option_is_instantiated(make_cfg, group: str, option: str) -> None:
    """assemble() builds every object of the run from the option's YAML (no model is loaded): a broken
    `_target_`, a missing keyword or an invalid value fails here, not in the middle of a run."""
    # one attack's YAML: composed into the `attacks` node, as attacks/standard.yaml does
    if group == "attack":
        p = assemble(make_cfg(f"+attack@attacks.{option}={option}", fast=False))
        assert list(p.attacks) == [option] and p.attacks[option].kind
        return
    cfg = make_cfg(f"{group}={option}", fast=False)
    p = assemble(cfg)
    assert p.settings.stage == "unlearn"
    if group == "method":
        assert p.settings.method_name == option
        assert cfg.method._target_.startswith("clear_lightning.methods.")
    # what compose keeps as specs is instantiated here: the trainer's strategy and plugins, the callbacks
    for key, node in p.trainer.spec.items():
        if isinstance(node, dict) and "_target_" in node:
            try:
                assert instantiate(node) is not None, key
            except (
                Exception
            ) as err:  # an optional extra (DeepSpeed) that this machine lacks: the class resolved
                if "pip install" not in str(err.__cause__ or err):
                    raise
    if group == "trainer" and p.trainer.spec.get("accelerator") == "cpu":
        assert p.trainer(None, max_epochs=1).max_epochs == 1


def test_method_yaml_targets_resolve(make_cfg) -> None:
    from hydra.utils import get_class

    for method in options("method"):
        cfg = make_cfg(f"method={method}", fast=False)
        cls = get_class(cfg.method._target_)
        assert hasattr(cls, "compute_loss") and isinstance(cls.streams, tuple)


def test_bases_are_not_options() -> None:
    assert "_base" not in options("method") and "_base" not in options("model")
    assert {"gd", "scrub", "rmu"} <= set(options("method"))


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
