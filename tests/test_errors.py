"""Bad input fails with a message naming the problem and the fix, and destroys nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from clear_lightning.errors import ClearConfigError
from clear_lightning.pipeline import run


def test_unknown_method_lists_the_available_ones(make_cfg) -> None:
    with pytest.raises(ConfigCompositionException, match=r"(?s)method/nope.*Available options.*gd"):
        make_cfg("method=nope")


def test_unknown_split_lists_the_available_ones(make_cfg) -> None:
    with pytest.raises(ConfigCompositionException, match=r"(?s)split/forget50.*forget10"):
        make_cfg("split=forget50")


def test_unknown_stage(make_cfg) -> None:
    with pytest.raises(ClearConfigError, match="unknown stage 'train'.*\n.*fix: use stage="):
        run(make_cfg("stage=train"))


def test_missing_data_path(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        "data=clear",
        f"data.path={tmp_path}/nowhere",
        f"data.tofu_path={tmp_path}/tofu",
        "stage=eval",
        fast=False,
    )
    with pytest.raises(ClearConfigError, match=r"(?s)data.path=.*does not exist.*fix: point data.path"):
        run(cfg)
    assert not (tmp_path / "nowhere").exists()


def test_forget_set_with_no_rows_fails_before_building_anything(make_cfg) -> None:
    """No image task leaves the visual forget set empty: refused before any model is trained."""
    cfg = make_cfg("modality=visual", "data.image_tasks=[]")
    before = sorted(Path(cfg.paths.artifacts).glob("*/*/artifact.json"))
    with pytest.raises(ClearConfigError, match=r"(?s)forget set of split=forget10 .*no rows.*fix:"):
        run(cfg)
    assert sorted(Path(cfg.paths.artifacts).glob("*/*/artifact.json")) == before


def test_l1_without_lora_is_refused(unlearn_result, make_cfg) -> None:
    with pytest.raises(ClearConfigError, match=r"(?s)l1_lambda.*fix: set method.lora=true"):
        run(make_cfg("method.lora=false", "method.l1_lambda=0.01"))


def test_pretrain_of_a_hub_model_is_refused(make_cfg) -> None:
    with pytest.raises(ClearConfigError, match="pretrain builds a model from a config"):
        run(make_cfg("stage=pretrain", "model.path=some/hub-model", "~model.build"))


def test_missing_gold_refused_on_big_models(make_cfg, tmp_path: Path) -> None:
    """Without build_missing, nothing expensive is built implicitly."""
    with pytest.raises(ClearConfigError, match=r"(?s)not built yet.*fix: run stage="):
        run(make_cfg("build_missing=false", "finetune.seed=123"))


def test_missing_checkpoint_is_named(unlearn_result, make_cfg, tmp_path: Path) -> None:
    with pytest.raises(
        ClearConfigError, match=r"(?s)eval.checkpoint=.*absent does not exist.*fix: pass eval.checkpoint"
    ):
        run(make_cfg("stage=eval", f"eval.checkpoint={tmp_path}/absent"))
