"""Enrolment, identification and the attack logit on hand-made embeddings; the CV losses by hand."""

from __future__ import annotations

import math

import pytest
import torch

from clear_lightning.cv import losses
from clear_lightning.cv.identification import attack_logit, enrol, identify, probe


def test_enrolment_is_the_normalised_mean_of_the_first_n_embeddings():
    emb = torch.tensor([[2.0, 0.0], [0.0, 2.0], [9.0, 9.0], [0.0, -1.0]])
    labels = torch.tensor([0, 0, 0, 1])
    vectors, used = enrol(emb, labels, num_persons=2, n=2)
    assert torch.allclose(vectors[0], torch.tensor([1.0, 1.0]) / math.sqrt(2))  # mean (1, 1), rows 0-1 only
    assert torch.allclose(vectors[1], torch.tensor([0.0, -1.0]))
    assert used.tolist() == [True, True, False, True]


def test_identification_picks_the_most_cosine_similar_person():
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    predicted, cos = identify(torch.tensor([[5.0, 1.0], [0.1, 3.0], [-2.0, -1.0]]), gallery)
    assert predicted.tolist() == [0, 1, 2]
    assert cos[0, 0] == pytest.approx(5 / math.sqrt(26))


def test_attack_logit_is_log_odds_of_the_clamped_cosine():
    logit = attack_logit(torch.tensor([0.5, 0.8, -0.3, 1.0]))
    assert logit[0] == pytest.approx(0.0, abs=1e-6)
    assert logit[1] == pytest.approx(math.log(4.0), rel=1e-5)
    assert torch.isfinite(logit).all() and logit[2] < -10 and logit[3] > 10  # c = max(0, cos), clipped


def test_probe_accuracy_per_group():
    # person 0 and 1 enrol on their first image; probes: p0 near p0 (right), p1 nearer p0 (wrong), p2 right
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.9, 0.2], [-1.0, 0.0], [-1.0, 0.1]])
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    p = probe(emb, labels, num_persons=3, n_enrol=1)
    assert p.person.tolist() == [0, 1, 2]
    assert p.accuracy([0]) == 1.0 and p.accuracy([1]) == 0.0 and p.accuracy([0, 1, 2]) == pytest.approx(2 / 3)


def test_am_softmax_against_a_hand_computed_value():
    cos = torch.tensor([[0.8, 0.2], [0.1, 0.5]])
    # row 0: logits 30·(0.8−0.4)=12, 30·0.2=6 → log(1+e^−6); row 1 (label 1): 3, 30·(0.5−0.4)=3 → log 2
    expected = (math.log1p(math.exp(-6)) + math.log(2)) / 2
    assert losses.am_softmax_loss(cos, torch.tensor([0, 1]), s=30, m=0.4).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_method_loss_terms():
    g_f, g_r = torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.0])
    assert torch.allclose(losses.orthogonal_component(g_f, g_r), torch.tensor([0.0, 1.0]))
    zero = torch.zeros(3)
    assert losses.dpo_loss(zero, zero, zero, zero, beta=0.1).item() == pytest.approx(math.log(2))
    logp = torch.log_softmax(torch.tensor([[1.0, 2.0, 3.0]]), -1)
    assert losses.kl_teacher_student(logp, logp).item() == pytest.approx(0.0, abs=1e-7)
    assert losses.l1_penalty([torch.tensor([-1.0, 2.0]), torch.tensor([[3.0]])]).item() == 6.0
