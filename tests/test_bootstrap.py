"""Person-level bootstrap intervals on synthetic records."""

from __future__ import annotations

from statistics import fmean

import numpy as np
import pytest

from clear_lightning.metrics.bootstrap import bootstrap
from clear_lightning.metrics.summary import summarize

SETS = ("forget_qa", "forget_caption", "retain_qa", "retain_caption", "real_faces", "real_world")


def _intervals(*args, **kwargs):
    return bootstrap(*args, **kwargs).intervals


def _records(n_persons: int, items_per_set: int = 3, seed: int = 0, sets=SETS, shift: float = 0.0) -> dict:
    """Scored records whose values share a per-person effect, as real persons' items do."""
    rng = np.random.default_rng(seed)
    out: dict = {name: [] for name in sets}
    for p in range(n_persons):
        effect = rng.normal(0.0, 0.15)
        for name in sets:
            for i in range(items_per_set):

                def value(effect: float = effect) -> float:
                    return float(np.clip(0.5 + shift + effect + rng.normal(0.0, 0.1), 0.01, 0.99))

                out[name].append(
                    {
                        "id": f"{name}-{p}-{i}",
                        "set": name,
                        "person": f"person{p:03d}",
                        "kind": "qa",
                        "rougeL_recall": value(),
                        "probability": value(),
                        "truth_ratio": value() * 1.5,
                    }
                )
    return out


def _mean_probability(records_by_set) -> dict:
    return {
        "mean": fmean(r["probability"] for rs in records_by_set.values() for r in rs),
        "label": "x",
        "n": 3,
    }


def test_reproducible_for_a_fixed_seed_and_seed_matters():
    records = _records(20)
    first = _intervals(records, _mean_probability, n_boot=200, seed=7)
    assert first == _intervals(records, _mean_probability, n_boot=200, seed=7)
    assert set(first) == {"mean"}  # non-float values (str, int) are ignored
    assert first != _intervals(records, _mean_probability, n_boot=200, seed=8)
    # independent of the order of sets and of records within a set
    shuffled = {name: list(reversed(records[name])) for name in reversed(list(records))}
    again = _intervals(shuffled, _mean_probability, n_boot=200, seed=7)
    assert again["mean"] == pytest.approx(first["mean"], abs=1e-12)


def test_interval_contains_point_estimate():
    records = _records(30)
    result = bootstrap(records, _mean_probability, n_boot=500, seed=1)
    lo, hi = result.intervals["mean"]
    assert lo < result.point["mean"] < hi
    assert result.n_used == result.n_boot == 500 and result.n_failed == 0 and result.n_persons == 30
    keys = result.summary_keys()
    assert keys["mean_ci_lo"] == lo and keys["mean_ci_hi"] == hi and keys["bootstrap_n_used"] == 500


def test_interval_shrinks_with_more_persons():
    few = _intervals(_records(5, seed=3), _mean_probability, n_boot=500, seed=0)["mean"]
    many = _intervals(_records(50, seed=3), _mean_probability, n_boot=500, seed=0)["mean"]
    ratio = (many[1] - many[0]) / (few[1] - few[0])
    assert ratio < 0.6  # about sqrt(5/50) = 0.32


def test_persons_are_resampled_jointly_across_sets():
    records = _records(10, items_per_set=2)

    def statistic(records_by_set) -> dict:
        persons = [{r["person"] for r in rs} for rs in records_by_set.values()]
        counts = [len(rs) for rs in records_by_set.values()]
        assert all(p == persons[0] for p in persons)  # the same draw for every set
        assert len(set(counts)) == 1 and counts[0] == 20  # every item of each drawn person, with multiplicity
        return {"distinct": float(len(persons[0]))}

    result = bootstrap(records, statistic, n_boot=50, seed=0)
    assert result.n_used == 50 and result.intervals["distinct"][1] <= 10


def test_missing_person_key_names_the_set():
    records = _records(3)
    del records["retain_caption"][4]["person"]
    with pytest.raises(ValueError, match="retain_caption.*retain_caption-1-1.*'person'"):
        _intervals(records, _mean_probability, n_boot=10)
    with pytest.raises(ValueError, match="paired set 'forget_qa'"):
        _intervals(
            _records(3), lambda a, b: {}, n_boot=10, paired_records_by_set={"forget_qa": [{"id": "g"}]}
        )


def test_failed_replicates_are_skipped_and_counted():
    # person000 is the only one with forget_qa items: replicates that miss them leave forget_qa empty
    records = _records(4, sets=("retain_qa",))
    records["forget_qa"] = [
        dict(r, set="forget_qa") for r in records["retain_qa"] if r["person"] == "person000"
    ]
    result = bootstrap(records, summarize, n_boot=200, seed=0)
    assert 0 < result.n_used < 200 and result.n_failed == 200 - result.n_used
    assert sum(result.failures.values()) == result.n_failed
    assert any("forget_qa" in message for message in result.failures)
    assert result.n_values["forget_metric"] == result.n_used
    with pytest.raises(ValueError, match="all 5 bootstrap replicates failed"):
        # succeeds on the records as given (the point estimate), fails on every resample
        bootstrap(records, lambda r: {} if r is records else 1 / 0, n_boot=5)


def test_paired_records_use_the_same_persons():
    model, gold = _records(12, sets=("forget_qa",)), _records(12, sets=("forget_qa",), seed=5, shift=-0.3)

    def statistic(records_by_set, gold_by_set) -> dict:
        assert [r["person"] for r in records_by_set["forget_qa"]] == [
            r["person"] for r in gold_by_set["forget_qa"]
        ]
        return summarize(records_by_set, gold_by_set)

    result = bootstrap(model, statistic, n_boot=100, seed=0, paired_records_by_set=gold)
    assert result.n_used == 100
    lo, hi = result.intervals["forget_quality"]
    assert 0.0 <= lo <= hi <= 1.0
    assert "forget_qa/n" not in result.intervals  # ints are not bootstrapped


def test_summarize_on_a_thousand_records_brackets_the_point_estimate():
    records = _records(57)  # 57 persons x 6 sets x 3 items = 1026 records
    result = bootstrap(records, summarize, n_boot=200, seed=0)
    assert result.n_used == 200
    lo, hi = result.intervals["forget_metric"]
    assert lo < result.point["forget_metric"] < hi


def test_strata_keep_the_design_number_of_persons_per_group():
    # 2 forget persons among 40: a pooled draw misses both in about e^-2 of the replicates (forget set empty)
    records = _records(38, sets=("retain_qa",))
    records["forget_qa"] = [
        dict(r, set="forget_qa", person=f"forget{k}", id=f"forget_qa-{k}-{i}")
        for k in range(2)
        for i, r in enumerate(records["retain_qa"][:3])
    ]
    pooled = bootstrap(records, summarize, n_boot=300, seed=0)
    assert pooled.n_failed > 0 and pooled.strata == {}
    seen = []

    def statistic(records_by_set) -> dict:
        seen.append(
            (
                len({r["person"] for r in records_by_set["forget_qa"]}),
                len(records_by_set["forget_qa"]),
                len(records_by_set["retain_qa"]),
            )
        )
        return summarize(records_by_set)

    result = bootstrap(records, statistic, n_boot=300, seed=0, strata=lambda name: name.split("_")[0])
    assert result.n_used == 300 and result.strata == {"forget": 2, "retain": 38}
    # every replicate: 2 forget persons drawn (maybe one twice) and 38 retain persons, so the set sizes are fixed
    assert all(n_items == 6 and n_retain == 38 * 3 for _, n_items, n_retain in seen)
    assert {n for n, _, _ in seen[1:]} == {1, 2}
    again = _intervals(records, summarize, n_boot=300, seed=0, strata=lambda name: name.split("_")[0])
    assert again == result.intervals
