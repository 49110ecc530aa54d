"""Losses against hand-computed values; the reference model is untouched by training the student."""

from __future__ import annotations

import math

import pytest
import torch

from clear_lightning.data.encoding import IGNORE_INDEX
from clear_lightning.methods import losses


def _logits(*rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_sequence_nll_uses_answer_tokens_only() -> None:
    # vocab 2; position t predicts label t+1. Labels [-100, 0, 1]: positions 0 and 1 are scored.
    logits = _logits([[0.0, 0.0], [math.log(3), 0.0], [9.0, -9.0]])
    labels = torch.tensor([[IGNORE_INDEX, 0, 1]])
    # pos0 predicts 0 with p=1/2; pos1 predicts 1 with p=1/4; pos2 (last) is never scored
    expected = (math.log(2) + math.log(4)) / 2
    assert losses.sequence_nll(logits, labels).item() == pytest.approx(expected)
    assert losses.nll(logits, labels).item() == pytest.approx(expected)
    assert losses.sequence_log_likelihood(logits, labels).item() == pytest.approx(
        -(math.log(2) + math.log(4))
    )


def test_batch_nll_is_a_token_mean_not_a_sequence_mean() -> None:
    logits = torch.zeros(2, 4, 2)  # every token p = 1/2
    labels = torch.tensor([[IGNORE_INDEX, 1, 1, 1], [IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 0]])
    assert losses.nll(logits, labels).item() == pytest.approx(math.log(2))
    logits[1, 2] = torch.tensor([math.log(3), 0.0])  # second sequence's only token: p(0) = 3/4
    expected = (3 * math.log(2) + math.log(4 / 3)) / 4
    assert losses.nll(logits, labels).item() == pytest.approx(expected)


def test_answer_kl_direction_and_mask() -> None:
    p = _logits([[math.log(3), 0.0], [0.0, 0.0], [5.0, 0.0]])  # pos0: p=(3/4,1/4)
    q = _logits([[0.0, 0.0], [0.0, 0.0], [0.0, 5.0]])  # pos0: q=(1/2,1/2)
    labels = torch.tensor([[IGNORE_INDEX, 1, IGNORE_INDEX]])  # only position 0 is an answer position
    kl_pq = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert losses.answer_kl(p, q, labels).item() == pytest.approx(kl_pq)
    kl_qp = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert losses.answer_kl(q, p, labels).item() == pytest.approx(kl_qp)  # KL is not symmetric


def test_lora_l1_sums_absolute_lora_weights() -> None:
    module = torch.nn.Module()
    module.lora_A = torch.nn.Parameter(torch.tensor([[1.0, -2.0]]))
    module.lora_B = torch.nn.Parameter(torch.tensor([[-0.5], [0.25]]))
    module.base = torch.nn.Parameter(torch.tensor([100.0]))
    assert losses.lora_l1(module).item() == pytest.approx(3.75)


def test_npo_loss_hand_values_and_sign() -> None:
    theta, ref = torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -2.0])
    # log ratios +1 and -1; (2/β)·mean log(1 + e^{β·r})
    for beta in (1.0, 0.5):
        expected = 2 / beta * (math.log1p(math.exp(beta)) + math.log1p(math.exp(-beta))) / 2
        assert losses.npo_loss(theta, ref, beta).item() == pytest.approx(expected)
        assert losses.npo_loss(ref, ref, beta).item() == pytest.approx(2 / beta * math.log(2))  # θ = θ₀
    theta.requires_grad_(True)
    losses.npo_loss(theta, ref, 1.0).backward()
    assert (theta.grad > 0).all()  # descending it lowers p_θ(y|x) of the forget answers


def test_dpo_loss_hand_values_and_sign() -> None:
    chosen, chosen_ref = torch.tensor([-1.0]), torch.tensor([-2.0])  # IDK gained 1 nat
    rejected, rejected_ref = torch.tensor([-3.0]), torch.tensor([-2.0])  # forget answer lost 1 nat
    expected = -math.log(1 / (1 + math.exp(-0.1 * 2)))  # −log σ(β·2)
    assert losses.dpo_loss(chosen, chosen_ref, rejected, rejected_ref, 0.1).item() == pytest.approx(expected)
    same = torch.tensor([-2.0])
    assert losses.dpo_loss(same, same, same, same, 0.1).item() == pytest.approx(math.log(2))  # θ = θ₀
    chosen.requires_grad_(True)
    rejected.requires_grad_(True)
    losses.dpo_loss(chosen, chosen_ref, rejected, rejected_ref, 0.1).backward()
    assert chosen.grad.item() < 0 < rejected.grad.item()  # raise IDK, lower the forget answer


def test_sequence_losses_ignore_prompt_pad_and_image_positions() -> None:
    torch.manual_seed(0)
    logits, ref = torch.randn(2, 6, 5), torch.randn(2, 6, 5)
    # row 0: 2 image/prompt tokens, 2 answer tokens, 2 pad; row 1: 3 prompt tokens, 3 answer tokens
    labels = torch.tensor(
        [[IGNORE_INDEX, IGNORE_INDEX, 1, 2, IGNORE_INDEX, IGNORE_INDEX], [IGNORE_INDEX] * 3 + [4, 0, 3]]
    )
    mask = losses.prediction_mask(labels)
    assert mask.tolist() == [
        [False, True, True, False, False, False],
        [False, False, True, True, True, False],
    ]
    changed = logits.clone()
    changed[~mask] = 100 * torch.randn_like(changed[~mask])  # anything off the scored positions
    for fn in (
        lambda lg: losses.npo_loss(losses.sequence_log_likelihood(lg, labels), torch.zeros(2), 1.0),
        lambda lg: losses.answer_kl(ref, lg, labels),
        lambda lg: losses.nll(lg, labels),
    ):
        assert fn(changed).item() == pytest.approx(fn(logits).item())


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_rmu_loss_hand_value_and_mask(reduction: str) -> None:
    h_forget = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [9.0, 9.0]]])  # last position masked (pad)
    forget_mask = torch.tensor([[True, True, False]])
    control = torch.tensor([0.0, 2.0])  # c·u
    h_retain = torch.tensor([[[1.0, 1.0], [5.0, 5.0]]])
    h_retain_ref = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    retain_mask = torch.tensor([[True, False]])
    loss, forget, retain = losses.rmu_loss(
        h_forget, control, forget_mask, h_retain, h_retain_ref, retain_mask, 3.0, reduction
    )
    d = 2.0 if reduction == "mean" else 1.0  # mean: ÷ hidden size (Li et al.'s F.mse_loss); sum: ‖·‖²
    assert forget.item() == pytest.approx((5.0 + 0.0) / 2 / d)  # ‖(1,-2)‖², ‖(0,0)‖²
    assert retain.item() == pytest.approx(1.0 / d)  # ‖(0,1)‖² on the one unmasked position
    assert loss.item() == pytest.approx((2.5 + 3.0 * 1.0) / d)


def test_rmu_loss_defaults_to_the_mean_over_the_hidden_size() -> None:
    h, target = torch.tensor([[[1.0, 2.0, 3.0]]]), torch.zeros(1, 1, 3)
    mask = torch.ones(1, 1, dtype=torch.bool)
    assert losses.masked_sq_distance(h, target, mask).item() == pytest.approx(14.0 / 3)
    assert losses.masked_sq_distance(h, target, mask, "sum").item() == pytest.approx(14.0)
    loss, _, _ = losses.rmu_loss(h, torch.zeros(3), mask, h, h, mask, 1.0)
    assert loss.item() == pytest.approx(14.0 / 3)
