"""U-LIRA and U-MIA on synthetic logits whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from clear_lightning.cv.attacks import fit_logistic, folds, ulira_accuracy, umia_accuracy


def _synthetic(shift: float, models: int = 40, examples: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    member = np.arange(models) % 2 == 0
    per_example = rng.normal(0, 3, size=examples)  # examples differ in difficulty; LIRA fits each one
    logits = per_example + rng.normal(0, 1, size=(models, examples)) + shift * member[:, None]
    return logits, member


@pytest.mark.parametrize("attack", [ulira_accuracy, umia_accuracy])
def test_identical_in_and_out_distributions_give_one_half(attack):
    logits, member = _synthetic(shift=0.0)
    assert attack(logits, member) == pytest.approx(0.5, abs=0.06)


@pytest.mark.parametrize("attack", [ulira_accuracy, umia_accuracy])
def test_separated_distributions_give_one(attack):
    logits, member = _synthetic(shift=20.0)
    assert attack(logits, member) > 0.99


def test_per_example_lira_beats_the_population_attack_when_examples_differ():
    logits, member = _synthetic(shift=1.5)
    assert ulira_accuracy(logits, member) > umia_accuracy(logits, member) + 0.1


def test_half_split_is_the_papers_single_fold():
    logits, member = _synthetic(shift=20.0)
    ((targets, shadows),) = folds(member, "half")
    assert len(targets) == len(shadows) == 20 and member[targets].sum() == 10
    assert ulira_accuracy(logits, member, "half") > 0.99


def test_pair_folds_keep_shadows_balanced_and_cover_every_model():
    member = np.arange(8) % 2 == 0
    all_targets = []
    for targets, shadows in folds(member):
        assert member[targets].sum() == 1 and member[shadows].sum() == len(shadows) / 2
        all_targets += targets.tolist()
    assert sorted(all_targets) == list(range(8))


def test_unbalanced_models_are_refused():
    with pytest.raises(ValueError, match="as many in as out"):
        folds(np.array([True, True, True, False]))


def test_logistic_regression_finds_the_threshold():
    x = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0]) + 10.0
    w, b = fit_logistic(x, np.array([0, 0, 0, 1, 1, 1.0]))
    assert w > 0 and -b / w == pytest.approx(10.0, abs=0.1)
