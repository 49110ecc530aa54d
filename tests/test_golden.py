"""Golden numbers of a fixed-seed `debug=fast` unlearning run (gd, forget10, both modalities).

They pin what the whole pipeline computes — data generation, the base/original/gold builds, the unlearning fit
and every aggregate — so a refactor that is meant to change no number proves it here, to 1e-6.

When a change is MEANT to move the numbers, regenerate them and paste the printed dict over GOLDEN:

    .venv/bin/python -m pytest tests/test_golden.py -q -s --regenerate-golden
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

GOLDEN = {
    "train/loss": -0.3468303680419922,
    "forget_metric": 0.0,
    "retain_metric": 0.0,
    "real_metric": 0.0,
    "model_utility": 0.0,
    "forget_quality": 0.08702408702408701,
    "log_forget_quality": -2.4415703363010324,
    "gap_closed": 0.09590203194813401,
    "forget_caption/probability": 0.003943557070226899,
    "forget_caption/rougeL_recall": 0.0,
    "forget_caption/truth_ratio": 0.009522846090303683,
    "forget_face_name/probability": 0.21175377319458108,
    "forget_face_name/rougeL_recall": 0.0,
    "forget_face_name/truth_ratio": 0.25544802457279703,
    "forget_qa/probability": 0.0043267962554380856,
    "forget_qa/rougeL_recall": 0.0,
    "forget_qa/truth_ratio": 0.06847965283854199,
    "holdout_caption/probability": 0.00393203586284919,
    "holdout_caption/rougeL_recall": 0.0,
    "holdout_caption/truth_ratio": 0.0,
    "holdout_face_name/probability": 0.10533654868746108,
    "holdout_face_name/rougeL_recall": 0.0,
    "holdout_face_name/truth_ratio": 0.0,
    "holdout_qa/probability": 0.003882953287361342,
    "holdout_qa/rougeL_recall": 0.0,
    "holdout_qa/truth_ratio": 0.03201225932611948,
    "real_faces/probability": 0.3191678412715861,
    "real_faces/rougeL_recall": 0.0,
    "real_faces/truth_ratio": 0.2806756471666428,
    "real_world/probability": 0.26227318772226116,
    "real_world/rougeL_recall": 0.0,
    "real_world/truth_ratio": 0.1968823810457004,
    "retain_caption/probability": 0.004110049664532881,
    "retain_caption/rougeL_recall": 0.0,
    "retain_caption/truth_ratio": 0.10017551564818172,
    "retain_face_name/probability": 0.20826027780732403,
    "retain_face_name/rougeL_recall": 0.0,
    "retain_face_name/truth_ratio": 0.23899355757118307,
    "retain_qa/probability": 0.005530437296618821,
    "retain_qa/rougeL_recall": 0.0,
    "retain_qa/truth_ratio": 0.08104366852015898,
}


def _final_train_loss(run_dir: Path) -> float:
    """The last logged `train/loss` of the CSV logger."""
    rows = []
    for path in sorted(run_dir.rglob("metrics.csv")):
        with path.open() as f:
            rows += [r for r in csv.DictReader(f) if r.get("train/loss")]
    assert rows, f"no train/loss logged under {run_dir}"
    return float(rows[-1]["train/loss"])


def test_golden_numbers(unlearn_result, request):
    cfg, result = unlearn_result
    summary = result["summary"]
    got = {"train/loss": _final_train_loss(Path(cfg.run_dir))}
    got.update({k: summary[k] for k in GOLDEN if k != "train/loss"})
    if request.config.getoption("--regenerate-golden"):
        print("\nGOLDEN = " + repr(got))
        pytest.skip("regenerated: paste the printed GOLDEN into tests/test_golden.py")
    for key, want in GOLDEN.items():
        assert want is not None, "GOLDEN is not filled in: run with --regenerate-golden"
        assert got[key] is not None and math.isclose(got[key], want, rel_tol=0, abs_tol=1e-6), (
            f"{key}: {got[key]!r} != golden {want!r}"
        )
