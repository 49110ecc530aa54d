"""Membership-inference scores and AUC: can an attacker still tell the forget set from unseen data?

A model that truly unlearned its forget set should treat it like data it never saw, so a membership-inference
attack (MIA) on (forget, holdout) should do as well against it as against the gold model retrained without the
forget set. Per sequence, every score below is oriented the same way, higher = less likely a member, so they feed
`auc` directly:

- LOSS (Yeom et al. 2018): mean negative log-likelihood of the target tokens.
- zlib (Carlini et al. 2021, "Extracting Training Data from Large Language Models"): mean NLL over the zlib
  entropy of the text, calibrating away how compressible (generic) the text is.
- Min-K% Prob (Shi et al. 2023, arXiv 2310.16789): the mean of the lowest k% token log-probs, since outlier
  tokens are rarer in seen text.
- Min-K%++ (Zhang et al. 2024, arXiv 2404.02936): Min-K% on log-probs standardised by the mean and spread of
  log p under the model's own next-token distribution, since training text sits at local maxima of it.

`privacy_leakage` is MUSE's PrivLeak (Shi et al. 2024, arXiv 2407.06460): the AUC gap to the gold model,
relative to the gold AUC.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor

IGNORE_INDEX = -100  # HF label convention for positions not scored (prompt, padding)
SIGMA_EPS = (
    1e-8  # floor for Min-K%++'s sigma: sigma is 0 only for a uniform distribution, where x - mu is 0 too
)
_COUNT_TOLERANCE = 1e-9  # ceil(k * n) without float artefacts: 0.1 * 30 is 3.0000000000000004

TokenStats = Mapping[str, Sequence[float]]


# ---------------------------------------------------------------------------------------------------------------
# Per-token statistics


def token_statistics(logits: Tensor, labels: Tensor) -> list[dict[str, list[float]]]:
    """Per row, for every scored target token: `token_logprobs` (log p(x_t)), and `mu` / `sigma`, the mean and
    standard deviation of log p(z) for z ~ p at that position (what Min-K%++ standardises with).

    `logits` [B, T, V] and `labels` [B, T] follow the HF causal-LM convention: the logit at t predicts label t+1,
    and labels of -100 are not scored. Computed in float32 whatever the logits' dtype; only the scored positions
    are upcast, so long prompts cost no extra memory.
    """
    if logits.ndim != 3 or tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"expected logits [B, T, V] and labels [B, T], got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    shifted_logits, targets = logits.detach()[:, :-1], labels[:, 1:]
    return [
        _row_statistics(row_logits, row_targets)
        for row_logits, row_targets in zip(shifted_logits, targets, strict=True)
    ]


def _row_statistics(logits: Tensor, targets: Tensor) -> dict[str, list[float]]:
    keep = targets != IGNORE_INDEX
    logprobs = torch.log_softmax(logits[keep].float(), dim=-1)  # [n, V]
    token_logprobs = logprobs.gather(-1, targets[keep].long().unsqueeze(-1)).squeeze(-1)
    probs = logprobs.exp()
    support = probs > 0  # tokens masked to -inf contribute 0, not 0 * -inf = nan
    mu = torch.where(support, probs * logprobs, 0.0).sum(-1)
    variance = torch.where(support, probs * (logprobs - mu[:, None]).square(), 0.0).sum(-1)
    return {
        "token_logprobs": token_logprobs.tolist(),
        "mu": mu.tolist(),
        "sigma": variance.sqrt().tolist(),
    }


# ---------------------------------------------------------------------------------------------------------------
# Sequence scores (higher = less likely a member)


def _values(stats: TokenStats, key: str) -> np.ndarray:
    values = np.asarray(stats[key], dtype=np.float64)
    if values.size == 0:
        raise ValueError("no scored target tokens: every label is -100")
    return values


def _lowest_mean(values: np.ndarray, k: float) -> float:
    """Mean of the lowest ceil(k * n) values: the outlier tokens Min-K% and Min-K%++ look at."""
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k!r}")
    count = max(1, math.ceil(k * values.size - _COUNT_TOLERANCE))
    return float(np.sort(values)[:count].mean())


def loss_score(stats: TokenStats) -> float:
    """LOSS attack: mean negative log-likelihood of the target tokens."""
    return float(-_values(stats, "token_logprobs").mean())


def zlib_score(stats: TokenStats, text: str) -> float:
    """zlib attack (Carlini et al. 2021): mean NLL (log-perplexity) over the zlib-compressed byte length of `text`.

    As in the paper and the reference code of Min-K%, Min-K%++ and MUSE, the numerator is the mean, not the total
    NLL, so the score does not grow with the token count.
    """
    return loss_score(stats) / len(zlib.compress(text.encode("utf-8")))


def min_k_score(stats: TokenStats, k: float = 0.2) -> float:
    """Min-K% Prob (Shi et al. 2023), negated: minus the mean of the lowest ceil(k * n) token log-probs."""
    return -_lowest_mean(_values(stats, "token_logprobs"), k)


def min_k_plus_plus_score(stats: TokenStats, k: float = 0.2) -> float:
    """Min-K%++ (Zhang et al. 2024), negated: Min-K% on (log p(x_t) - mu_t) / sigma_t.

    sigma_t is floored at `SIGMA_EPS`: it is 0 only when the next-token distribution is uniform over its
    support, where log p(x_t) - mu_t is 0 as well, so the token scores 0 instead of nan.
    """
    logprobs, mu, sigma = (_values(stats, key) for key in ("token_logprobs", "mu", "sigma"))
    return -_lowest_mean((logprobs - mu) / np.maximum(sigma, SIGMA_EPS), k)


# The attacks in report order. Each takes the row's `token_statistics`; "zlib" also needs the scored text.
SCORES: Mapping[str, Callable[..., float]] = MappingProxyType(
    {
        "loss": loss_score,
        "zlib": zlib_score,
        "min_k": min_k_score,
        "min_k_plus_plus": min_k_plus_plus_score,
    }
)

# ---------------------------------------------------------------------------------------------------------------
# AUC and privacy leakage


def _scores_array(scores: Sequence[float], side: str) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError(f"{side} scores are empty")
    if np.isnan(values).any():
        raise ValueError(f"{side} scores contain nan")
    return values


def auc(member_scores: Sequence[float], nonmember_scores: Sequence[float]) -> float:
    """ROC AUC of telling members from non-members when a LOWER score means member.

    AUC = P(member score < non-member score) + 0.5 P(tie), exactly, from average ranks (Mann-Whitney U): 0.5 when
    the attack cannot tell them apart, 1.0 when every member scores below every non-member.
    """
    members = _scores_array(member_scores, "member")
    nonmembers = _scores_array(nonmember_scores, "non-member")
    ranks = rankdata(np.concatenate([members, nonmembers]))  # ties share their average rank
    n_non = nonmembers.size
    u_nonmembers = (
        ranks[members.size :].sum() - n_non * (n_non + 1) / 2
    )  # pairs won by the non-member, ties 0.5
    return float(u_nonmembers / (members.size * n_non))


def privacy_leakage(auc_unlearned: float, auc_gold: float) -> float:
    """MUSE PrivLeak: (AUC_unlearned - AUC_gold) / AUC_gold, as a fraction (MUSE reports it x 100).

    Near 0 is good; positive means the forget set is still recognisable (under-unlearning), negative that it is
    now less member-like than never-seen data (over-unlearning, itself a tell).
    """
    if auc_gold == 0:
        raise ValueError("gold AUC is 0: privacy leakage is undefined")
    return (auc_unlearned - auc_gold) / auc_gold
