"""summary.json diagnostics through `run`: degenerate flags, gap closed, holdout gap and bootstrap intervals.

No model is trained or loaded: stage=eval (and stage=gold) run with the model evaluation replaced by hand-written
per-item records (with `person` ids) and the stored original/gold evaluations by directories written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clear_lightning.errors import ClearConfigError
from clear_lightning.evaluation.records import write_records
from clear_lightning.pipeline import run, stages, upstream
from clear_lightning.pipeline.compose import assemble
from clear_lightning.pipeline.evaluation import eval_identity

FORGET = ("f0", "f1", "f2")
RETAIN = ("r0", "r1", "r2", "r3", "r4", "r5")
CELEBRITIES = ("c0", "c1", "c2", "c3")


def _item(name: str, person: str, i: int, rouge: float, prob: float, ratio: float) -> dict:
    return {
        "id": f"{name}-{person}-{i}",
        "set": name,
        "person": person,
        "rougeL_recall": rouge,
        "probability": prob,
        "truth_ratio": ratio,  # raw R; the summary's TR is mean max(0, 1 - R)
    }


def _records(forget: tuple[float, float, float], real_prob: float = 0.6, holdout: bool = False) -> dict:
    """Forget (ROUGE, P, R) as given, varied per person; retain and real fixed apart from per-person noise."""
    rouge, prob, ratio = forget
    out: dict = {"forget_qa": [], "forget_caption": [], "retain_qa": [], "real_faces": []}
    for k, person in enumerate(FORGET):
        for name in ("forget_qa", "forget_caption"):
            for i in range(2):
                d = 0.02 * (k - 1) + 0.01 * i
                out[name].append(_item(name, person, i, rouge + d, prob + d, ratio * (1 + d)))
    for k, person in enumerate(RETAIN):
        for i in range(2):
            out["retain_qa"].append(_item("retain_qa", person, i, 0.8 + 0.01 * k, 0.7 + 0.01 * i, 0.3))
    for k, person in enumerate(CELEBRITIES):
        out["real_faces"].append(_item("real_faces", person, 0, 0.5, real_prob + 0.01 * k, 0.4))
    if holdout:  # persons nobody was trained on: gold's forget scores should be about these
        out["holdout_qa"] = [
            _item("holdout_qa", f"h{k}", i, 0.25, 0.15, 0.95) for k in range(3) for i in range(2)
        ]
    return out


ORIGINAL = (0.9, 0.8, 0.3)  # knows the forget persons: TR = 0.7
GOLD = (0.3, 0.2, 0.9)  # never saw them: TR = 0.1
HALF = (0.6, 0.5, 0.6)


def _write_eval(directory: Path, records: dict, meta: dict | None = None) -> Path:
    write_records(directory / "eval", records)
    if meta is not None:
        (directory / "meta.json").write_text(json.dumps(meta))
    return directory


def _stored_models(monkeypatch, tmp_path: Path, stored) -> None:
    """Stored upstream models are directories named by role; their stored evaluations come from `stored`."""
    for module in (stages, upstream):
        monkeypatch.setattr(module, "finetuned_model", lambda p, which, build: (tmp_path / which, {}))
        monkeypatch.setattr(module, "stored_evaluation", stored)


@pytest.fixture
def run_eval(make_cfg, tmp_path, monkeypatch):
    """run(stage=eval) on the given model records, with a stored original and gold evaluation written here."""

    def _run(
        model: dict, *overrides: str, original=ORIGINAL, original_real_prob=0.6, gold=None, holdout=False
    ):
        gold_records = gold if gold is not None else _records(GOLD, holdout=holdout)
        checkpoint = tmp_path / "checkpoint"
        checkpoint.mkdir(exist_ok=True)
        gold_dir = tmp_path / "gold_eval"
        identity = eval_identity(
            assemble(make_cfg("stage=eval", f"eval.checkpoint={checkpoint}", *overrides)), "gold"
        )
        _write_eval(gold_dir, gold_records, identity)  # eval.gold must exist when the run is assembled
        cfg = make_cfg("stage=eval", f"eval.checkpoint={checkpoint}", f"eval.gold={gold_dir}", *overrides)
        original_dir = None
        if original is not None:
            original_dir = _write_eval(
                tmp_path / "original_eval", _records(original, original_real_prob, holdout=holdout)
            )

        def stored(ctx, path, key, label, build=True):
            if label == "original" and original_dir is not None:
                return original_dir
            raise ClearConfigError(f"no stored evaluation of the {label} model", "run it first")

        _stored_models(monkeypatch, tmp_path, stored)
        monkeypatch.setattr(stages, "load_checkpoint", lambda p, path: (None, None))
        monkeypatch.setattr(stages, "evaluate", lambda p, model_, processor: (model, {}))
        result = run(cfg)
        on_disk = json.loads((Path(cfg.run_dir) / "summary.json").read_text())
        assert on_disk["forget_metric"] == pytest.approx(result["summary"]["forget_metric"])
        return on_disk

    return _run


def test_degenerate_flag_set_by_a_zero_forget_component(run_eval):
    # every forget item prefers a wrong answer (R >= 1): TR = mean max(0, 1 - R) = 0 fixes the harmonic mean at 0
    summary = run_eval(_records((0.6, 0.5, 1.5)))
    assert summary["forget_metric"] == 0.0
    assert summary["forget_metric_degenerate"] is True
    assert summary["forget_metric_limit"] == "forget_caption/truth_ratio"
    assert summary["forget_metric_limit_value"] == 0.0
    forget_reasons = [r for r in summary["degenerate_reasons"] if r.startswith("forget_metric: ")]
    assert any("forget_qa/truth_ratio = 0" in r for r in forget_reasons)
    assert summary["retain_metric_degenerate"] is False and summary["real_metric_degenerate"] is False
    assert summary["diagnostics"]["degenerate_floor"] == pytest.approx(0.10)
    assert summary["diagnostics"]["floor_check"].startswith("applied")


def test_degenerate_flag_not_set_otherwise(run_eval):
    summary = run_eval(_records(HALF))
    assert 0.0 < summary["forget_metric"] < 1.0
    assert summary["forget_metric_degenerate"] is False
    assert summary["degenerate_reasons"] == []
    for aggregate in ("real_metric", "retain_metric", "forget_metric", "model_utility"):
        assert summary[f"{aggregate}_degenerate"] is False
        assert summary[f"{aggregate}_limit"] and summary[f"{aggregate}_limit_value"] > 0


def test_degenerate_flag_from_the_original_below_the_floor(run_eval):
    # the original scores real_faces probability 0.05..0.08 < 0.10: real metric and model utility say nothing
    summary = run_eval(_records(HALF), original_real_prob=0.05)
    assert summary["real_metric_degenerate"] is True and summary["model_utility_degenerate"] is True
    assert summary["forget_metric_degenerate"] is False and summary["retain_metric_degenerate"] is False
    assert any(
        r.startswith("real_metric: real_faces/probability of the original") and "never knew" in r
        for r in summary["degenerate_reasons"]
    )
    # a lower floor accepts it
    assert (
        run_eval(_records(HALF), "degenerate_floor=0.01", original_real_prob=0.05)["real_metric_degenerate"]
        is False
    )


def test_no_stored_original_skips_the_floor_check_and_says_so(run_eval):
    summary = run_eval(_records((0.6, 0.5, 1.5)), original=None)
    assert summary["forget_metric_degenerate"] is True  # the zero component needs no original
    assert summary["diagnostics"]["floor_check"].startswith("not applied: no stored original evaluation")
    assert summary["gap_closed"] is None
    assert summary["diagnostics"]["gap_closed"] == "not computed: no original evaluation"
    assert summary["references"]["original"] is None and summary["references"]["gold"] is not None


def test_gap_closed_is_zero_for_the_original_and_one_for_gold(run_eval):
    original = run_eval(_records(ORIGINAL))
    assert original["gap_closed"] == 0.0
    for name in ("forget_qa", "forget_caption"):
        assert original[f"gap_closed/{name}"] == 0.0
        assert all(
            original[f"gap_closed/{name}/{c}"] == 0.0 for c in ("rougeL_recall", "probability", "truth_ratio")
        )
    # resampled jointly by person with the references, the original's own records give 0 in every replicate
    assert original["intervals"]["gap_closed"] == [0.0, 0.0]
    gold = run_eval(_records(GOLD))
    assert gold["gap_closed"] == pytest.approx(1.0)
    assert gold["gap_closed/forget_qa/probability"] == pytest.approx(1.0)
    assert gold["intervals"]["gap_closed"] == pytest.approx([1.0, 1.0])
    assert gold["forget_quality"] == pytest.approx(1.0)
    half = run_eval(_records(HALF))
    assert 0.3 < half["gap_closed"] < 0.7
    lo, hi = half["intervals"]["gap_closed"]
    assert lo <= half["gap_closed"] <= hi


def test_intervals_in_summary_json_and_reproducible_for_a_fixed_seed(run_eval):
    first = run_eval(_records(HALF))
    intervals, settings = first["intervals"], first["bootstrap"]
    for key in (
        "real_metric",
        "retain_metric",
        "forget_metric",
        "model_utility",
        "forget_quality",
        "log_forget_quality",
        "forget_qa/probability",
        "forget_quality/forget_qa",
        "gap_closed",
        "gap_closed/forget_caption",
    ):
        lo, hi = intervals[key]
        assert lo <= hi, key
    lo, hi = intervals["forget_metric"]
    assert lo < first["forget_metric"] < hi
    assert "forget_qa/n" not in intervals  # counts are not resampled statistics
    assert settings["n_boot"] == 200 and settings["seed"] == 0 and settings["level"] == 0.95
    assert settings["n_persons"] == len(FORGET) + len(RETAIN) + len(CELEBRITIES)
    assert settings["strata"] == {"forget": 3, "real": 4, "retain": 6}
    assert settings["n_used"] == 200 and settings["n_failed"] == 0
    assert "jointly by person" in settings["resampled"] and "original" in settings["resampled"]
    again = run_eval(_records(HALF))
    assert again["intervals"] == intervals
    other = run_eval(_records(HALF), "bootstrap.seed=1")
    assert other["intervals"] != intervals and other["bootstrap"]["seed"] == 1


def test_bootstrap_skipped_without_person_ids_or_replicates(run_eval):
    records = _records(HALF)
    for rows in records.values():
        for row in rows:
            del row["person"]
    summary = run_eval(records, gold={k: [dict(r) for r in v] for k, v in records.items()}, original=None)
    assert summary["bootstrap"]["skipped"] == "records carry no person ids"
    assert summary["intervals"] == {}
    assert summary["forget_metric_degenerate"] is False  # the rest of the diagnostics still run
    off = run_eval(_records(HALF), "bootstrap.n_boot=0")
    assert off["bootstrap"]["skipped"] == "bootstrap.n_boot=0" and off["intervals"] == {}


def test_stored_references_without_person_take_it_from_the_item_ids(run_eval, monkeypatch):
    """Original/gold evaluations cached before records carried `person`: same items, so same persons."""
    labelled = run_eval(_records(HALF))
    real_write = _write_eval

    def without_person(directory, records, meta=None):
        records = {
            k: [{f: v for f, v in r.items() if f != "person"} for r in rs] for k, rs in records.items()
        }
        return real_write(directory, records, meta)

    monkeypatch.setitem(globals(), "_write_eval", without_person)
    summary = run_eval(_records(HALF))
    assert summary["intervals"] == labelled["intervals"]
    assert summary["bootstrap"]["persons_from_ids"].startswith(f"{2 * (12 + 12 + 4)} records")


def test_holdout_gap_in_the_reference_section(run_eval):
    summary = run_eval(_records(HALF, holdout=True), holdout=True)
    gold = summary["references"]["gold"]
    assert summary["references"]["holdout_gap/qa/probability"] == pytest.approx(
        gold["forget_qa/probability"] - gold["holdout_qa/probability"]
    )
    assert summary["references"]["holdout_gap/qa/rougeL_recall"] == pytest.approx(0.3 + 0.005 - 0.25)
    assert not any(k.startswith("holdout_gap/caption") for k in summary["references"])  # no holdout_caption
    assert not any(
        k.startswith("holdout_gap/") for k in summary
    )  # top level only in the gold stage's summary
    assert summary["bootstrap"]["strata"]["holdout"] == 3


def test_gold_stage_summary_has_holdout_gap_and_gap_closed_one(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg("stage=gold")
    dirs = {
        "gold": _write_eval(
            tmp_path / "gold_eval",
            _records(GOLD, holdout=True),
            eval_identity(assemble(cfg), "gold"),
        ),
        "original": _write_eval(tmp_path / "original_eval", _records(ORIGINAL, holdout=True)),
    }
    _stored_models(monkeypatch, tmp_path, lambda p, path, key, label, build=True: dirs[label])
    summary = run(cfg)["summary"]
    assert summary["holdout_gap/qa/probability"] == pytest.approx(0.2 + 0.005 - 0.15)
    assert summary["holdout_gap/qa/truth_ratio"] == summary["references"]["holdout_gap/qa/truth_ratio"]
    assert summary["gap_closed"] == pytest.approx(1.0) and summary["forget_quality"] == pytest.approx(1.0)
    assert summary["references"]["original_eval"] == str(dirs["original"])


def test_unlearn_summary_and_comparison_carry_the_diagnostics(unlearn_result):
    """The real tiny pipeline: the keys are there whatever the numbers (bootstrap: intervals, or why not)."""
    cfg, result = unlearn_result
    run_dir = Path(cfg.run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    for aggregate in ("real_metric", "retain_metric", "forget_metric", "model_utility"):
        assert summary[f"{aggregate}_degenerate"] in (True, False)
        assert summary[f"{aggregate}_limit"].split("/")[1] in ("rougeL_recall", "probability", "truth_ratio")
    assert summary["diagnostics"]["floor_check"].startswith("applied")
    assert "gap_closed" in summary and summary["references"]["original_eval"] == result["original_eval"]
    assert summary["references"]["gold"]["forget_quality"] == pytest.approx(1.0)
    if "skipped" in summary["bootstrap"]:
        assert "person" in summary["bootstrap"]["skipped"] and summary["intervals"] == {}
    else:
        assert summary["bootstrap"]["n_used"] > 0 and "forget_metric" in summary["intervals"]
    table = (run_dir / "comparison.md").read_text()
    assert "| **gap_closed** |" in table
    flagged = [
        a
        for a in ("forget_metric", "retain_metric", "real_metric", "model_utility")
        if summary[f"{a}_degenerate"]
    ]
    if flagged:  # the run's own flags are marked in the table it prints
        notes = [line for line in table.splitlines() if line.startswith("- ")]
        assert "†" in table
        for aggregate in flagged:  # "- <cause> — <labels>: <aggregates>"
            assert any(
                cfg.method.name in n.rsplit(" — ", 1)[1].split(": ")[0] and aggregate in n.rsplit(": ", 1)[1]
                for n in notes
            )
