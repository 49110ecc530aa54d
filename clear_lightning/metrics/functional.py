"""Per-item CLEAR metrics as pure functions, so every aggregate can be recomputed from the stored records."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy.stats import ks_2samp

TruthRatioMean = Literal["arithmetic", "geometric"]

PLAIN_PROBABILITY_KINDS = frozenset({"qa", "caption", "face_qa"})  # open answers (face_qa: a QA answer)
MULTIPLE_CHOICE_KINDS = frozenset({"face_name", "multiple_choice"})

# ln of the smallest positive double: what log forget quality reports when the KS p-value underflows to 0.
LOG_P_FLOOR = math.log(np.finfo(np.float64).tiny)
_MAX_EXP_ARG = math.log(np.finfo(np.float64).max)


@functools.lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    """Build the ROUGE scorer once; its stemmer set-up is the expensive part."""
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_recall(generation: str, reference: str) -> float:
    """ROUGE-L recall of the greedy generation against the ground truth, as in the paper."""
    # benchmark.md §6 ROUGE-L: rouge_score RougeScorer(["rougeL"], use_stemmer=True), recall of generation vs y
    return float(_rouge_scorer().score(reference, generation)["rougeL"].recall)


def safe_exp(x: float) -> float:
    """exp that returns inf instead of raising, so absurd losses give a usable (inf/0) ratio."""
    return math.inf if x > _MAX_EXP_ARG else math.exp(x)


def _logsumexp(values: Sequence[float]) -> float:
    """Stable log Σ exp(v), so probabilities of long answers do not underflow to 0/0."""
    top = max(values)
    if math.isinf(top):
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def _require_losses(losses: Sequence[float], what: str) -> list[float]:
    """Reject an empty list of alternative answers: the ratio would be undefined."""
    values = [float(v) for v in losses]
    if not values:
        raise ValueError(f"{what} is empty: a truth ratio / multiple-choice probability needs at least one")
    return values


def normalised_probability(loss: float) -> float:
    """Length-normalised likelihood, so long and short answers are comparable."""
    # benchmark.md §6: P(y|x) = exp(-mean token NLL) = p(y|x)^(1/|y|)
    return safe_exp(-float(loss))


def multiple_choice_probability(loss: float, losses_wrong: Sequence[float]) -> float:
    """Share of the correct option among all options, so a model that prefers wrong options scores low."""
    wrong = _require_losses(losses_wrong, "losses_wrong")
    logits = [-float(loss), *(-v for v in wrong)]
    # benchmark.md §6 Probability (multiple choice): P(y|x) / (P(y|x) + Σ_k P(y'_k|x)), via a stable softmax
    return math.exp(logits[0] - _logsumexp(logits))


def truth_ratio(
    loss_paraphrased: float, losses_perturbed: Sequence[float], mean: TruthRatioMean = "arithmetic"
) -> float:
    """Raw R: how likely wrong answers are relative to the (paraphrased) truth; R < 1 means the truth wins."""
    perturbed = _require_losses(losses_perturbed, "losses_perturbed")
    if mean == "arithmetic":
        # benchmark.md §6 / paper eq. 3: R = (1/K Σ_k P(y'_k|x)) / P(ŷ|x), in log space
        log_r = _logsumexp([-v for v in perturbed]) - math.log(len(perturbed)) + float(loss_paraphrased)
    elif mean == "geometric":
        # benchmark.md §6 (TOFU code): R = (Π_k P(y'_k|x))^(1/K) / P(ŷ|x) = exp(loss_ŷ - mean_k loss_y'k)
        log_r = float(loss_paraphrased) - sum(perturbed) / len(perturbed)
    else:
        raise ValueError(f"truth ratio mean must be 'arithmetic' or 'geometric', got {mean!r}")
    return safe_exp(log_r)


def knowledge_truth_ratio(r: float) -> float:
    """Truth ratio in the knowledge direction (higher = prefers the truth), used by every aggregate."""
    # benchmark.md §6: TR = max(0, 1 - R)
    return max(0.0, 1.0 - r)


def tofu_forget_truth_ratio(r: float) -> float:
    """TOFU's forget convention: 1 when truth and falsehood are equally likely, as for a model that never knew."""
    # benchmark.md §6: min(R, 1/R); R = 0 or inf gives 0
    if r <= 0.0 or math.isinf(r):
        return 0.0
    return min(r, 1.0 / r)


def harmonic_mean(values: Sequence[float]) -> float:
    """Harmonic mean, so that one collapsed component drags the aggregate to 0."""
    items = [float(v) for v in values]
    if not items:
        raise ValueError("harmonic mean of no values is undefined")
    if any(v < 0 or math.isnan(v) for v in items):
        raise ValueError(f"harmonic mean needs non-negative values, got {items}")
    if any(v == 0.0 for v in items):
        return 0.0
    # benchmark.md §6 Real/Retain/Forget metric: n / Σ 1/v_i
    return len(items) / sum(1.0 / v for v in items)


def forget_quality(model_r: Sequence[float], gold_r: Sequence[float]) -> tuple[float, float]:
    """KS test of the model's truth ratios against gold's: a high p-value means indistinguishable from retraining.

    Returns (p_value, ln p). When p underflows to 0, ln p is LOG_P_FLOOR (≈ -708.4) instead of -inf,
    so summaries stay valid JSON.
    """
    if len(model_r) == 0 or len(gold_r) == 0:
        raise ValueError("forget quality needs at least one truth ratio for both the model and gold")
    # benchmark.md §6 Forget quality: two-sample KS test, FQ = p-value, log FQ = ln p
    p_value = float(ks_2samp(np.asarray(model_r, dtype=float), np.asarray(gold_r, dtype=float)).pvalue)
    return p_value, (math.log(p_value) if p_value > 0.0 else LOG_P_FLOOR)


def options_without_answer(answer: str, options: Sequence[str]) -> list[str]:
    """Wrong options only, whether or not the dataset lists the answer among them (benchmark.md §2: never count it twice)."""
    target = answer.strip()
    return [option for option in options if option.strip() != target]


def item_probability(kind: str, loss: float, losses_perturbed: Sequence[float]) -> float:
    """The probability score that the item's kind calls for (plain for open answers, share for choices)."""
    if kind in PLAIN_PROBABILITY_KINDS:
        return normalised_probability(loss)
    if kind in MULTIPLE_CHOICE_KINDS:
        return multiple_choice_probability(loss, losses_perturbed)
    raise ValueError(
        f"unknown item kind {kind!r}: expected one of {sorted(PLAIN_PROBABILITY_KINDS | MULTIPLE_CHOICE_KINDS)}"
    )


def score_record(record: dict[str, Any], truth_ratio_mean: TruthRatioMean = "arithmetic") -> dict[str, Any]:
    """Fill the derived per-item scores from the stored losses and generation, so records stay self-contained.
    A ROUGE-L the evaluator already computed from the same generation is kept, not computed again."""
    scored = dict(record)
    rouge = record.get("rougeL_recall")
    if rouge is None:
        rouge = rouge_l_recall(str(record["generation"]), str(record["answer"]))
    scored["rougeL_recall"] = float(rouge)
    scored["probability"] = item_probability(record["kind"], record["loss"], record["losses_perturbed"])
    losses = record["losses_perturbed"]
    scored["truth_ratio"] = truth_ratio(record["loss_paraphrased"], losses, truth_ratio_mean)
    return scored
