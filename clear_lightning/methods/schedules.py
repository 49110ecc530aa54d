"""Learning-rate schedules, as `_partial_`s of `conf/optim/*.yaml`: (optimizer, total_steps, epochs) → scheduler."""

from __future__ import annotations

import math

import torch


def warmup_linear_factor(step: int, warmup: int, total: int) -> float:
    """LR multiplier at `step`: linear warm-up over `warmup` steps, then linear decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


def warmup_linear(
    optimizer: torch.optim.Optimizer, total_steps: int, epochs: int, warmup_epochs: float = 1.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """benchmark.md §4: warm-up over `warmup_epochs` of the `epochs` (in optimiser steps), then linear decay to 0."""
    total = max(1, int(total_steps))
    warmup = min(total - 1, math.ceil(total * warmup_epochs / max(1, epochs)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_linear_factor(s, warmup, total))
