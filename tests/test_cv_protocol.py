"""Which persons each of the N models trains on, unlearns and never sees."""

from __future__ import annotations

import pytest

from clear_lightning.cv.protocol import plan_models
from clear_lightning.errors import ClearConfigError

FORGET = [17, 18, 19]


def test_half_the_models_train_on_the_forget_persons_and_half_never_see_them():
    plans = plan_models(20, FORGET, num_models=8, seed=0)
    assert [p.member for p in plans] == [True, False] * 4
    for p in plans:
        assert len(p.retain) == 8 and len(p.forget) == len(p.holdout) == 3
        assert not set(p.retain) & set(p.forget) and not set(p.retain) & set(p.holdout)
        assert not set(p.forget) & set(p.holdout)
        assert p.train == p.retain + p.forget
        assert (p.forget if p.member else p.holdout) == tuple(FORGET)
        assert not set(p.retain) & set(FORGET)  # the forget persons enter only as "in"


def test_plans_are_seeded_per_index_and_do_not_depend_on_n():
    assert plan_models(20, FORGET, 4, 0) == plan_models(20, FORGET, 8, 0)[:4]
    assert plan_models(20, FORGET, 4, 0)[0].retain != plan_models(20, FORGET, 4, 0)[2].retain
    assert plan_models(20, FORGET, 4, 1)[0].retain != plan_models(20, FORGET, 4, 0)[0].retain


def test_too_few_persons_or_an_odd_n_is_a_config_error():
    with pytest.raises(ClearConfigError, match="num_persons"):
        plan_models(7, [4, 5, 6], 4, 0)
    with pytest.raises(ClearConfigError, match="even number"):
        plan_models(20, FORGET, 5, 0)
