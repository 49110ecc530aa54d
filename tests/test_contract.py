"""The data contract (`clear_lightning.contract`): one table of evaluation sets that every reader agrees with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clear_lightning.contract import (
    EVAL_SET_TABLE,
    EVAL_SETS,
    FORGET_SPLITS,
    HOLDOUT_SPLITS,
    RETAIN_OF,
    SCHEMAS,
    counterpart,
    eval_set,
)
from clear_lightning.data.examples import is_visual_set
from clear_lightning.metrics.summary import set_group

CONF = Path(__file__).resolve().parents[1] / "conf" / "eval"


def test_every_configured_evaluation_set_is_in_the_table() -> None:
    for file in ("default.yaml", "text.yaml"):
        for name in yaml.safe_load((CONF / file).read_text())["sets"]:
            assert name in EVAL_SETS, f"{file}: {name}"


@pytest.mark.parametrize("split", FORGET_SPLITS)
def test_every_set_reads_a_config_of_the_schema(split: str) -> None:
    for spec in EVAL_SET_TABLE:
        assert spec.config_for(split) in SCHEMAS[spec.collection], (spec.name, split)
        columns = SCHEMAS[spec.collection][spec.config_for(split)]
        for column in (spec.prompt_column, spec.options_column):
            assert column is None or column in columns, (spec.name, column)
    assert eval_set("forget_qa").config_for(split) == f"{split}_perturbed"
    assert (
        eval_set("holdout_caption").config_for(split)
        == f"{HOLDOUT_SPLITS[FORGET_SPLITS.index(split)]}_perturbed"
    )
    assert eval_set("retain_face_name").config_for(split) == "retain_perturbed"


def test_the_readers_agree_with_the_table() -> None:
    assert list(RETAIN_OF.items()) == [
        ("forget01", "retain99"),
        ("forget05", "retain95"),
        ("forget10", "retain90"),
    ]
    for spec in EVAL_SET_TABLE:
        assert set_group(spec.name) == spec.group
        assert is_visual_set(spec.name) == (spec.modality == "visual") == (spec.collection == "clear")
    assert not is_visual_set("forget_nonsense")
    with pytest.raises(ValueError, match="unknown evaluation set"):
        set_group("forget_quality")  # a summary key, not a set
    assert counterpart("forget_face_name", "holdout") == eval_set("holdout_face_name")
    assert counterpart("real_faces", "holdout") is None


def test_the_contract_imports_nothing_of_the_package() -> None:
    code = (
        "import sys, clear_lightning.contract; "
        "print(sorted(m for m in sys.modules if m.startswith('clear_lightning') or m in ('torch', 'datasets')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['clear_lightning', 'clear_lightning.contract']"
