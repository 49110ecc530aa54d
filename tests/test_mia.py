from __future__ import annotations

import math
import zlib

import pytest
import torch

from clear_lightning.attacks.mia import (
    SCORES,
    auc,
    loss_score,
    min_k_plus_plus_score,
    min_k_score,
    privacy_leakage,
    token_statistics,
    zlib_score,
)

LN2, LN3 = math.log(2), math.log(3)


def _stats(logprobs, mu=None, sigma=None):
    n = len(logprobs)
    return {"token_logprobs": logprobs, "mu": mu or [0.0] * n, "sigma": sigma or [1.0] * n}


# ---------------------------------------------------------------------------------------------------------------
# token_statistics


def _logits() -> torch.Tensor:
    half = torch.log(torch.tensor([0.5, 0.25, 0.25]))  # mu = -1.5 ln2, sigma = 0.5 ln2
    uniform = torch.zeros(3)  # mu = -ln3, sigma = 0
    middle = torch.log(torch.tensor([0.25, 0.5, 0.25]))
    junk = torch.tensor([100.0, 0.0, 0.0])  # the last position predicts nothing: must be ignored
    return torch.stack(
        [
            torch.stack([half, uniform, junk, junk]),
            torch.stack([junk, junk, middle, junk]),
        ]
    )


LABELS = torch.tensor(
    [
        [-100, 0, 2, -100],  # logit 0 predicts label 1 (=0), logit 1 predicts label 2 (=2); label 3 masked
        [-100, -100, -100, 1],  # only logit 2 predicts label 3 (=1)
    ]
)


def test_token_statistics_hand_computed_with_shift_and_mask():
    row0, row1 = token_statistics(_logits(), LABELS)
    assert row0["token_logprobs"] == pytest.approx([-LN2, -LN3], abs=1e-6)
    assert row0["mu"] == pytest.approx([-1.5 * LN2, -LN3], abs=1e-6)
    assert row0["sigma"] == pytest.approx([0.5 * LN2, 0.0], abs=1e-6)
    assert row1["token_logprobs"] == pytest.approx([-LN2], abs=1e-6)
    assert row1["mu"] == pytest.approx([-1.5 * LN2], abs=1e-6)
    assert row1["sigma"] == pytest.approx([0.5 * LN2], abs=1e-6)


def test_token_statistics_upcasts_half_precision_and_handles_fully_masked_rows():
    stats = token_statistics(_logits().to(torch.bfloat16), LABELS)
    assert stats[0]["token_logprobs"] == pytest.approx([-LN2, -LN3], abs=1e-2)
    (empty,) = token_statistics(torch.zeros(1, 3, 5), torch.full((1, 3), -100))
    assert empty == {"token_logprobs": [], "mu": [], "sigma": []}
    with pytest.raises(ValueError, match="no scored target tokens"):
        loss_score(empty)


def test_token_statistics_ignores_minus_inf_logits():
    logits = torch.tensor([[[0.0, 0.0, -math.inf], [0.0, 0.0, 0.0]]])
    (row,) = token_statistics(logits, torch.tensor([[-100, 1]]))
    assert row["token_logprobs"] == pytest.approx([-LN2])
    assert row["mu"] == pytest.approx([-LN2]) and row["sigma"] == pytest.approx([0.0], abs=1e-7)


def test_token_statistics_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="expected logits"):
        token_statistics(torch.zeros(1, 3, 5), torch.zeros(1, 4, dtype=torch.long))


# ---------------------------------------------------------------------------------------------------------------
# Scores


def test_loss_score_is_mean_nll():
    assert loss_score(_stats([-1.0, -2.0, -3.0])) == pytest.approx(2.0)


def test_zlib_score_divides_mean_nll_by_compressed_bytes():
    text = "Aurelio Vantaggi is a novelist."
    assert zlib_score(_stats([-1.0, -3.0]), text) == pytest.approx(2.0 / len(zlib.compress(text.encode())))


def test_min_k_hand_computed():
    assert min_k_score(_stats([-1.0, -4.0, -2.0, -3.0]), k=0.5) == pytest.approx(3.5)  # lowest 2: -4, -3
    assert min_k_score(_stats([-1.0, -2.0, -3.0]), k=0.5) == pytest.approx(2.5)  # ceil(1.5) = 2 lowest
    assert min_k_score(_stats([-1.0, -2.0, -3.0]), k=0.01) == pytest.approx(3.0)  # at least one token
    assert min_k_score(_stats([-float(i) for i in range(30)]), k=0.1) == pytest.approx(28.0)  # 3, not 4


def test_min_k_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        min_k_score(_stats([-1.0]), k=0)


def test_min_k_plus_plus_hand_computed():
    # z = (lp - mu) / sigma = [(-1 + 1.5) / 0.5, (-2 + 1.5) / 1, (-3 + 1.5) / 2] = [1, -0.5, -0.75]
    stats = _stats([-1.0, -2.0, -3.0], mu=[-1.5, -1.5, -1.5], sigma=[0.5, 1.0, 2.0])
    assert min_k_plus_plus_score(stats, k=0.5) == pytest.approx(0.625)  # -mean(-0.75, -0.5)
    assert min_k_plus_plus_score(stats, k=1.0) == pytest.approx(0.25 / 3)


def test_min_k_plus_plus_zero_sigma_scores_zero():
    stats = _stats([-LN3, -1.0], mu=[-LN3, -2.0], sigma=[0.0, 1.0])  # z = [0, 1]
    assert min_k_plus_plus_score(stats, k=0.5) == pytest.approx(0.0)


def test_min_k_plus_plus_from_token_statistics():
    (row, _) = token_statistics(_logits(), LABELS)
    # z = [(-ln2 + 1.5 ln2) / (0.5 ln2), 0] = [1, 0]; lowest 1 of 2 is 0
    assert min_k_plus_plus_score(row, k=0.5) == pytest.approx(0.0, abs=1e-5)
    assert min_k_plus_plus_score(row, k=1.0) == pytest.approx(-0.5, abs=1e-5)


def test_scores_registry_order_and_functions():
    assert tuple(SCORES) == ("loss", "zlib", "min_k", "min_k_plus_plus")
    assert SCORES["loss"] is loss_score and SCORES["zlib"] is zlib_score
    assert SCORES["min_k"] is min_k_score and SCORES["min_k_plus_plus"] is min_k_plus_plus_score
    assert SCORES["min_k"](_stats([-1.0, -2.0, -3.0, -4.0, -5.0])) == pytest.approx(5.0)  # default k = 0.2


# ---------------------------------------------------------------------------------------------------------------
# AUC and privacy leakage


def test_auc_identical_separated_reversed():
    assert auc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.5
    assert auc([1.0, 2.0], [3.0, 4.0, 5.0]) == 1.0
    assert auc([3.0, 4.0, 5.0], [1.0, 2.0]) == 0.0


def test_auc_with_ties_hand_computed():
    # pairs (m, n): (1,2) 1, (1,3) 1, (2,2) 0.5, (2,3) 1 -> 3.5 / 4
    assert auc([1, 2], [2, 3]) == 0.875
    assert auc([1.0, 5.0], [3.0]) == 0.5


def test_auc_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="member scores are empty"):
        auc([], [1.0])
    with pytest.raises(ValueError, match="non-member scores are empty"):
        auc([1.0], [])
    with pytest.raises(ValueError, match="nan"):
        auc([float("nan")], [1.0])


def test_privacy_leakage_hand_computed():
    assert privacy_leakage(0.75, 0.5) == pytest.approx(0.5)
    assert privacy_leakage(0.4, 0.5) == pytest.approx(-0.2)
    assert privacy_leakage(0.5, 0.5) == 0.0
    with pytest.raises(ValueError, match="gold AUC"):
        privacy_leakage(0.5, 0.0)
