"""Pure loss functions of the CV track: the AM-softmax and the unlearning methods' terms."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def am_softmax_loss(cosines: Tensor, labels: Tensor, s: float = 30.0, m: float = 0.4) -> Tensor:
    """Additive-margin softmax (Wang et al. 2018; benchmark.md §8: s=30, m=0.4): CE over s·(cos − m·onehot)."""
    margin = F.one_hot(labels, cosines.shape[-1]).to(cosines.dtype) * m
    return F.cross_entropy(s * (cosines - margin), labels)


def class_log_probs(cosines: Tensor, s: float = 30.0) -> Tensor:
    """The identity distribution the head defines (no margin): log softmax(s·cos)."""
    return F.log_softmax(s * cosines, dim=-1)


def kl_teacher_student(teacher_logp: Tensor, student_logp: Tensor) -> Tensor:
    """KL(p_teacher ‖ p_student), mean over the batch (SCRUB's and LLMU's direction)."""
    return (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1).mean()


def cosine_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Mean cosine similarity of paired rows."""
    return F.cosine_similarity(a, b, dim=-1).mean()


def dpo_loss(policy_w: Tensor, policy_l: Tensor, ref_w: Tensor, ref_l: Tensor, beta: float) -> Tensor:
    """DPO (Rafailov et al.): −log σ(β[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))])."""
    return -F.logsigmoid(beta * ((policy_w - ref_w) - (policy_l - ref_l))).mean()


def rmu_loss(embeddings: Tensor, target: Tensor) -> Tensor:
    """RMU (Li et al.): squared distance of the forget embeddings to a fixed scaled random direction."""
    return (embeddings - target).pow(2).sum(-1).mean()


def l1_penalty(parameters: list[Tensor]) -> Tensor:
    """Σ|w| over the given parameters (the Sparsity method's ℓ1 term)."""
    return torch.stack([p.abs().sum() for p in parameters]).sum()


def orthogonal_component(g_forget: Tensor, g_retain: Tensor) -> Tensor:
    """g_f − (g_f·g_r / ‖g_r‖²) g_r: the part of the forget gradient that leaves the retain loss unchanged to 1st order."""
    denom = g_retain.dot(g_retain)
    if denom <= 0:
        return g_forget
    return g_forget - g_forget.dot(g_retain) / denom * g_retain
