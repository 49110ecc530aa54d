"""Diagnostics on paper-mode summaries: limiting component, degenerate flags, gap closed."""

from __future__ import annotations

import math

import pytest

from clear_lightning.metrics.diagnostics import (
    degenerate_flags,
    gap_closed,
    gap_closed_summary,
    limiting_component,
    set_names,
    with_diagnostics,
)
from clear_lightning.metrics.functional import harmonic_mean

COMPONENTS = ("rougeL_recall", "probability", "truth_ratio")


def _summary(values: dict[str, tuple[float, float, float]]) -> dict:
    """A summary shaped like summarize's: per-set components, n, and the harmonic-mean aggregates."""
    out: dict = {}
    for name, triple in values.items():
        out.update({f"{name}/{c}": v for c, v in zip(COMPONENTS, triple, strict=True)})
        out[f"{name}/n"] = 10
    for group in ("real", "retain", "forget"):
        comps = [v for n, t in values.items() if n.startswith(group) for v in t]
        out[f"{group}_metric"] = harmonic_mean(comps) if comps else None
    utility = [v for n, t in values.items() if n.startswith(("retain", "real")) for v in t]
    out["model_utility"] = harmonic_mean(utility) if utility else None
    out["forget_quality"] = 0.5
    out["forget_quality/forget_qa"] = 0.5  # not a set component: must be ignored
    return out


ORIGINAL = _summary(
    {
        "forget_qa": (0.9, 0.8, 0.6),
        "forget_caption": (0.7, 0.5, 0.4),
        "retain_qa": (0.9, 0.8, 0.6),
        "real_faces": (0.5, 0.6, 0.3),
    }
)
GOLD = _summary(
    {
        "forget_qa": (0.3, 0.2, 0.2),
        "forget_caption": (0.3, 0.1, 0.4),  # truth_ratio: no gap to close
        "retain_qa": (0.9, 0.8, 0.6),
        "real_faces": (0.5, 0.6, 0.3),
    }
)


def test_set_names_ignores_non_set_keys():
    assert set_names(ORIGINAL) == ["forget_caption", "forget_qa", "real_faces", "retain_qa"]
    assert set_names(ORIGINAL, ("forget",)) == ["forget_caption", "forget_qa"]


def test_limiting_component_is_smallest_and_zero_dominates():
    assert limiting_component(ORIGINAL, "forget") == {
        "set": "forget_caption",
        "component": "truth_ratio",
        "value": 0.4,
    }
    assert limiting_component(ORIGINAL, "forget_metric") == limiting_component(ORIGINAL, "forget")
    assert limiting_component(ORIGINAL, "model_utility")["value"] == 0.3
    zero = _summary({"forget_qa": (0.9, 0.0, 0.6)})
    assert zero["forget_metric"] == 0.0
    assert limiting_component(zero, "forget") == {
        "set": "forget_qa",
        "component": "probability",
        "value": 0.0,
    }
    assert limiting_component(zero, "retain") is None
    with pytest.raises(ValueError, match="unknown group"):
        limiting_component(zero, "holdout")


def test_degenerate_flags_zero_component():
    model = _summary({"forget_qa": (0.2, 0.1, 0.0), "retain_qa": (0.9, 0.8, 0.6)})
    flags = degenerate_flags(model)
    assert set(flags) == {"forget", "retain", "model_utility"}
    assert flags["forget"]["degenerate"] is True
    assert "forget_qa/truth_ratio = 0" in flags["forget"]["reasons"][0]
    assert flags["retain"] == {"degenerate": False, "reasons": []}
    assert flags["model_utility"]["degenerate"] is False


def test_degenerate_flags_original_below_floor():
    original = _summary({"forget_qa": (0.9, 0.05, 0.6), "retain_qa": (0.9, 0.8, 0.6)})
    model = _summary({"forget_qa": (0.2, 0.01, 0.3), "retain_qa": (0.9, 0.8, 0.6)})
    assert degenerate_flags(model)["forget"]["degenerate"] is False  # without the original: no judgement
    flags = degenerate_flags(model, original)
    assert flags["forget"]["degenerate"] is True
    (reason,) = flags["forget"]["reasons"]
    assert "forget_qa/probability" in reason and "0.05" in reason and "never knew" in reason
    assert flags["retain"]["degenerate"] is False
    assert degenerate_flags(model, original, floor=0.01)["forget"]["degenerate"] is False


def test_with_diagnostics_keys_and_input_untouched():
    model = _summary({"forget_qa": (0.2, 0.1, 0.0), "retain_qa": (0.9, 0.8, 0.6)})
    before = dict(model)
    out = with_diagnostics(model)
    assert model == before
    assert out["forget_metric_limit"] == "forget_qa/truth_ratio" and out["forget_metric_limit_value"] == 0.0
    assert out["forget_metric_degenerate"] is True
    assert out["retain_metric_limit"] == "retain_qa/truth_ratio" and out["retain_metric_degenerate"] is False
    assert out["model_utility_limit"] == "retain_qa/truth_ratio"
    assert out["real_metric_limit"] is None and out["real_metric_degenerate"] is None
    assert len(out["degenerate_reasons"]) == 1 and out["degenerate_reasons"][0].startswith("forget_metric: ")
    assert all(out[k] == v for k, v in before.items())


def test_gap_closed_scalar():
    assert gap_closed(0.8, 0.8, 0.2) == 0.0
    assert gap_closed(0.2, 0.8, 0.2) == 1.0
    assert gap_closed(0.5, 0.8, 0.2) == pytest.approx(0.5)
    assert gap_closed(0.0, 0.8, 0.2) == pytest.approx(4 / 3)  # over-forgetting
    assert gap_closed(0.9, 0.8, 0.2) < 0  # learned more
    assert gap_closed(0.5, 0.4, 0.4) is None  # no gap
    assert gap_closed(0.5, 0.4, 0.4 + 1e-9) is None
    assert gap_closed(None, 0.8, 0.2) is None and gap_closed(math.nan, 0.8, 0.2) is None


def test_gap_closed_summary_original_gold_half_and_beyond():
    original = gap_closed_summary(ORIGINAL, ORIGINAL, GOLD)
    assert original["gap_closed"] == 0.0
    assert original["gap_closed/forget_qa"] == 0.0
    assert original["gap_closed/forget_caption/truth_ratio"] is None  # no gap: None, not NaN
    assert set(original) == {
        *(f"gap_closed/{s}/{c}" for s in ("forget_qa", "forget_caption") for c in COMPONENTS),
        "gap_closed/forget_qa",
        "gap_closed/forget_caption",
        "gap_closed",
    }
    gold = gap_closed_summary(GOLD, ORIGINAL, GOLD)
    assert gold["gap_closed"] == pytest.approx(1.0) and gold["gap_closed/forget_caption"] == pytest.approx(
        1.0
    )
    half = {
        k: (ORIGINAL[k] + GOLD[k]) / 2 if isinstance(ORIGINAL[k], float) else ORIGINAL[k] for k in ORIGINAL
    }
    assert gap_closed_summary(half, ORIGINAL, GOLD)["gap_closed"] == pytest.approx(0.5)
    beyond = dict(GOLD, **{f"forget_qa/{c}": 0.0 for c in COMPONENTS})
    out = gap_closed_summary(beyond, ORIGINAL, GOLD)
    assert out["gap_closed/forget_qa"] > 1.0
    assert out["gap_closed/forget_qa/rougeL_recall"] == pytest.approx(0.9 / 0.6)
    # 5 defined cells: 3 on forget_qa, 2 on forget_caption (its truth_ratio has no gap)
    assert out["gap_closed"] == pytest.approx((0.9 / 0.6 + 0.8 / 0.6 + 0.6 / 0.4 + 1.0 + 1.0) / 5)


def test_gap_closed_summary_no_gap_anywhere_and_missing_reference():
    assert gap_closed_summary(ORIGINAL, ORIGINAL, ORIGINAL)["gap_closed"] is None
    gold = {k: v for k, v in GOLD.items() if not k.startswith("forget_caption/")}
    with pytest.raises(ValueError, match="gold summary has no forget set 'forget_caption'"):
        gap_closed_summary(ORIGINAL, ORIGINAL, gold)
