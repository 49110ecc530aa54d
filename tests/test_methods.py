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


def test_reference_is_unchanged_and_only_lora_trains(tiny_checkpoint) -> None:
    from clear_lightning.methods.gd import GradientDifference
    from clear_lightning.models.load import load_model

    model = load_model(str(tiny_checkpoint))
    lora = {"r": 4, "lora_alpha": 8, "target_modules": r".*language_model.*\.(q_proj|v_proj)"}
    module = GradientDifference(model, name="gd", lora_config=lora, lr=1e-2)
    batch = {
        "input_ids": torch.tensor([[2, 10, 11, 12, 3]]),
        "attention_mask": torch.ones(1, 5, dtype=torch.long),
        "labels": torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 11, 12, 3]]),
        "pixel_values": None,
    }
    ref_before = module.reference_forward(batch).logits.clone()
    params_before = {n: p.detach().clone() for n, p in module.model.named_parameters()}
    opt = torch.optim.AdamW([p for p in module.model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss, _ = module.compute_loss({"forget": batch, "retain": batch})
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(module.reference_forward(batch).logits, ref_before)  # bit-identical
    assert not torch.allclose(module(batch).logits, ref_before)  # the student did move
    changed = {n for n, p in module.model.named_parameters() if not torch.equal(p, params_before[n])}
    assert changed and all("lora_" in n for n in changed)


def test_full_parameter_student_keeps_a_frozen_copy(tiny_checkpoint) -> None:
    from clear_lightning.methods.ga import GradientAscent
    from clear_lightning.models.load import load_model

    module = GradientAscent(load_model(str(tiny_checkpoint)), name="ga", lora=False)
    assert module.reference_model is not None and not module.is_lora
    assert not any(p.requires_grad for p in module.reference_model.parameters())
