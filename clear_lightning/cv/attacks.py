"""U-LIRA and U-MIA (paper appendix G): can an attacker tell "trained, then unlearned" from "never seen"?

Inputs are attack logits `logits[model, example]` of the fixed forget persons' probe images and `member[model]`
(True: the model trained on them and then unlearned them; False: it never saw them). Each attack is fitted on
shadow models and scored on target models; the result is the accuracy of its in/out guesses on the targets,
so 0.5 means the attacker cannot tell (what retraining from scratch gives).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize

_MIN_SCALE = 1e-3
_MAD_TO_SIGMA = 0.6745  # MAD / 0.6745 estimates σ of a Gaussian


def folds(member: np.ndarray, scheme: str = "pairs", seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(targets, shadows) index pairs that keep the shadows' in/out classes balanced.

    "pairs": each (in model, out model) pair in turn is the target, all others the shadows. Plain
    leave-one-out would not do: removing an "in" target leaves more "out" shadows, and a population attack
    that has learnt nothing then guesses the shadows' majority, i.e. always wrong (0.0 instead of 0.5).
    "half": the paper's single split, half of each class as targets, the rest as shadows.
    """
    ins, outs = np.flatnonzero(member), np.flatnonzero(~member)
    if len(ins) != len(outs) or len(ins) < 2:
        raise ValueError(
            f"attacks need as many in as out models, at least 2 each; got {len(ins)} in, {len(outs)} out"
        )
    idx = np.arange(len(member))
    if scheme == "pairs":
        return [(np.array([i, o]), np.setdiff1d(idx, [i, o])) for i, o in zip(ins, outs, strict=True)]
    if scheme == "half":
        rng = np.random.default_rng(seed)
        targets = np.sort(
            np.concatenate([rng.permutation(ins)[: len(ins) // 2], rng.permutation(outs)[: len(outs) // 2]])
        )
        return [(targets, np.setdiff1d(idx, targets))]
    raise ValueError(f"unknown fold scheme {scheme!r}; use pairs or half")


def _robust_gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (median, MAD/0.6745): Gaussian fits that ignore outlying shadow models."""
    mu = np.median(x, axis=0)
    sd = np.median(np.abs(x - mu), axis=0) / _MAD_TO_SIGMA
    return mu, np.maximum(sd, _MIN_SCALE)


def _log_normal(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)


def ulira_scores(target: np.ndarray, shadow: np.ndarray, shadow_member: np.ndarray) -> np.ndarray:
    """Per-example log likelihood ratio log N(ℓ; in) − log N(ℓ; out), fitted on shadows (> 0 → guess "in")."""
    if shadow_member.all() or not shadow_member.any():
        raise ValueError("U-LIRA needs shadow models both with and without the forget persons")
    mu_in, sd_in = _robust_gaussian(shadow[shadow_member])
    mu_out, sd_out = _robust_gaussian(shadow[~shadow_member])
    return _log_normal(target, mu_in, sd_in) - _log_normal(target, mu_out, sd_out)


def ulira_accuracy(logits: np.ndarray, member: np.ndarray, scheme: str = "pairs", seed: int = 0) -> float:
    """Accuracy of the per-example likelihood-ratio test on target models, over all target examples."""
    correct, total = 0, 0
    for targets, shadows in folds(member, scheme, seed):
        guess = ulira_scores(logits[targets], logits[shadows], member[shadows]) > 0
        correct += int((guess == member[targets, None]).sum())
        total += guess.size
    return correct / total


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-4) -> tuple[float, float]:
    """1-d logistic regression (weight, bias) by L-BFGS on the mean log loss (+ a tiny ℓ2 on the weight)."""
    mean, scale = float(x.mean()), float(x.std()) or 1.0
    z = (x - mean) / scale

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = theta[0] * z + theta[1]
        p = 1.0 / (1.0 + np.exp(-t))
        nll = np.mean(np.logaddexp(0.0, t) - y * t) + l2 * theta[0] ** 2
        r = p - y
        return nll, np.array([np.mean(r * z) + 2 * l2 * theta[0], np.mean(r)])

    w, b = minimize(loss, np.zeros(2), jac=True, method="L-BFGS-B").x
    return w / scale, b - w * mean / scale


def umia_accuracy(logits: np.ndarray, member: np.ndarray, scheme: str = "pairs", seed: int = 0) -> float:
    """Population attack: logistic regression on the shadow models' logits, accuracy on the targets."""
    correct, total = 0, 0
    for targets, shadows in folds(member, scheme, seed):
        x = logits[shadows].ravel()
        y = np.repeat(member[shadows], logits.shape[1]).astype(float)
        w, b = fit_logistic(x, y)
        guess = (w * logits[targets] + b) > 0
        correct += int((guess == member[targets, None]).sum())
        total += guess.size
    return correct / total
