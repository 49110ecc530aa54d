"""Pure loss functions over answer tokens only (benchmark.md §5); every method composes these."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.encoding import IGNORE_INDEX


def _shift(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Next-token alignment: position t predicts label t+1; mask is True on answer tokens."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    return logits, labels, labels != IGNORE_INDEX


def token_nll(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per-token cross-entropy [B, T-1] (0 off the answer) and the answer mask."""
    logits, labels, mask = _shift(logits, labels)
    nll = F.cross_entropy(logits.transpose(1, 2), labels.clamp_min(0), reduction="none")
    return nll * mask, mask


def sequence_nll(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean token NLL of each sequence's answer [B]; P(y|x)^(1/|y|) = exp(-this) (benchmark.md §6)."""
    nll, mask = token_nll(logits, labels)
    return nll.sum(1) / mask.sum(1).clamp_min(1)


def sequence_log_likelihood(logits: Tensor, labels: Tensor) -> Tensor:
    """Sum of answer-token log-probabilities log p(y|x) [B] (NPO/DPO use whole-sequence likelihoods)."""
    nll, _ = token_nll(logits, labels)
    return -nll.sum(1)


def nll(logits: Tensor, labels: Tensor) -> Tensor:
    """NLL(D): mean cross-entropy over all answer tokens of the batch (benchmark.md §5 notation)."""
    total, mask = token_nll(logits, labels)
    return total.sum() / mask.sum().clamp_min(1)


def answer_kl(p_logits: Tensor, q_logits: Tensor, labels: Tensor) -> Tensor:
    """KL(p ‖ q) = Σ_v p log(p/q), averaged over answer positions only (never pad/prompt/image)."""
    p_logits, _, mask = _shift(p_logits, labels)
    q_logits = q_logits[:, :-1].float()
    log_p, log_q = F.log_softmax(p_logits, -1), F.log_softmax(q_logits, -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    return (kl * mask).sum() / mask.sum().clamp_min(1)


def lora_l1(module: torch.nn.Module) -> Tensor:
    """Σ‖W_lora‖₁ over every LoRA matrix (the paper's ℓ1 regulariser, benchmark.md §5)."""
    terms = [p.abs().sum() for n, p in module.named_parameters() if "lora_" in n and p.requires_grad]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()


def prediction_mask(labels: Tensor) -> Tensor:
    """[B, T] True at the positions that predict an answer token (the ones NLL and KL score)."""
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return mask


def npo_loss(logp_theta: Tensor, logp_ref: Tensor, beta: float) -> Tensor:
    """(2/β)·E[log(1 + (p_θ(y|x)/p_θ₀(y|x))^β)] with sequence log-likelihoods [B] (benchmark.md §5, NPO)."""
    return 2.0 / beta * F.softplus(beta * (logp_theta.float() - logp_ref.float())).mean()


DPO_SCALES = ("paper", "openunlearning")


def dpo_loss(
    logp_chosen: Tensor,
    logp_chosen_ref: Tensor,
    logp_rejected: Tensor,
    logp_rejected_ref: Tensor,
    beta: float,
    scale: str = "paper",
) -> Tensor:
    """−E log σ(β[log p_θ(y_w)/p_θ₀(y_w) − log p_θ(y_l)/p_θ₀(y_l)]) over sequences [B] (benchmark.md §5, DPO).

    scale: "paper" is the term as written; "openunlearning" multiplies it by 2/β (20× at β = 0.1), as
    OpenUnlearning's DPO does, so its numbers and learning rates can be compared.
    """
    if scale not in DPO_SCALES:
        raise ValueError(f"dpo scale '{scale}': use paper or openunlearning")
    margin = (logp_chosen - logp_chosen_ref) - (logp_rejected - logp_rejected_ref)
    loss = -F.logsigmoid(beta * margin.float()).mean()
    return loss * (2.0 / beta) if scale == "openunlearning" else loss


RMU_REDUCTIONS = ("mean", "sum")


def masked_sq_distance(h: Tensor, target: Tensor, mask: Tensor, reduction: str = "mean") -> Tensor:
    """RMU's distance (benchmark.md §5): the per-token squared error averaged over the hidden size (reduction="mean",
    Li et al.'s F.mse_loss) or summed over it ("sum" = ‖h_t − target_t‖²₂, d× larger), then averaged over
    the masked positions."""
    if reduction not in RMU_REDUCTIONS:
        raise ValueError(f"rmu reduction '{reduction}': use mean or sum")
    sq = (h.float() - target.float()).pow(2)
    sq = sq.mean(-1) if reduction == "mean" else sq.sum(-1)
    return (sq * mask).sum() / mask.sum().clamp_min(1)


def rmu_loss(
    h_forget: Tensor,
    control: Tensor,
    forget_mask: Tensor,
    h_retain: Tensor,
    h_retain_ref: Tensor,
    retain_mask: Tensor,
    alpha: float,
    reduction: str = "mean",
) -> tuple[Tensor, Tensor, Tensor]:
    """‖h_ℓ(forget) − c·u‖² + α‖h_ℓ(retain) − h_ℓ⁰(retain)‖² (benchmark.md §5, RMU); returns (loss, forget, retain).

    reduction: "mean" over the hidden size (Li et al., the default) or "sum" (d× larger)."""
    forget = masked_sq_distance(h_forget, control.expand_as(h_forget), forget_mask, reduction)
    retain = masked_sq_distance(h_retain, h_retain_ref, retain_mask, reduction)
    return forget + alpha * retain, forget, retain
