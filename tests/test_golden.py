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
    "train/loss": -0.27325010299682617,
    "forget_metric": 0.0,
    "retain_metric": 0.0,
    "real_metric": 0.0,
    "model_utility": 0.0,
    "forget_quality": 0.018648018648018645,
    "log_forget_quality": -3.982015377248181,
    "gap_closed": 0.06851055366327598,
    "forget_caption/probability": 0.005727132773502517,
    "forget_caption/rougeL_recall": 0.0,
    "forget_caption/truth_ratio": 0.04377879436925691,
    "forget_face_name/probability": 0.18985978840779033,
    "forget_face_name/rougeL_recall": 0.0,
    "forget_face_name/truth_ratio": 0.14659092223983772,
    "forget_qa/probability": 0.004462437660939191,
    "forget_qa/rougeL_recall": 0.0,
    "forget_qa/truth_ratio": 0.05784552576760996,
    "holdout_caption/probability": 0.005363747470748992,
    "holdout_caption/rougeL_recall": 0.0,
    "holdout_caption/truth_ratio": 0.0,
    "holdout_face_name/probability": 0.11109968977776014,
    "holdout_face_name/rougeL_recall": 0.0,
    "holdout_face_name/truth_ratio": 0.0,
    "holdout_qa/probability": 0.004083122440418015,
    "holdout_qa/rougeL_recall": 0.0,
    "holdout_qa/truth_ratio": 0.04275351821305398,
    "real_faces/probability": 0.3107880819906252,
    "real_faces/rougeL_recall": 0.0,
    "real_faces/truth_ratio": 0.2999466590175332,
    "real_world/probability": 0.23359426074947046,
    "real_world/rougeL_recall": 0.0,
    "real_world/truth_ratio": 0.09571274849844841,
    "retain_caption/probability": 0.005724478915797335,
    "retain_caption/rougeL_recall": 0.0,
    "retain_caption/truth_ratio": 0.05889852010840263,
    "retain_face_name/probability": 0.1886431621923911,
    "retain_face_name/rougeL_recall": 0.0,
    "retain_face_name/truth_ratio": 0.13734120079780218,
    "retain_qa/probability": 0.004824388752720585,
    "retain_qa/rougeL_recall": 0.0,
    "retain_qa/truth_ratio": 0.029716789307927705,
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
