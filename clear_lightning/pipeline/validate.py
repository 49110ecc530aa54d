"""Every numeric and path setting checked before anything is built, each error naming the key and the fix.

A learning rate of 0 or 0 epochs would otherwise "unlearn" nothing and exit 0 with the original's scores; a
negative one ends in a torch traceback that names no key; a missing `eval.gold` would be ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ..contract import EVAL_SETS, PROBE_SETS
from ..errors import ClearConfigError

# key → (lowest allowed value, whether the lowest is allowed): positive counts, positive rates, non-negative weights
POSITIVE = {
    "optim.lr": (0.0, False),
    "optim.epochs": (1, True),
    "optim.batch_size": (1, True),
    "optim.grad_accum": (1, True),
    "optim.weight_decay": (0.0, True),
    "optim.warmup_epochs": (0.0, True),
    "finetune.lr": (0.0, False),
    "finetune.epochs": (1, True),
    "finetune.batch_size": (1, True),
    "finetune.grad_accum": (1, True),
    "finetune.weight_decay": (0.0, True),
    "pretrain.lr": (0.0, False),
    "pretrain.epochs": (1, True),
    "pretrain.batch_size": (1, True),
    "pretrain.grad_accum": (1, True),
    "pretrain.weight_decay": (0.0, True),
    "eval.batch_size": (1, True),
    "eval.max_new_tokens": (1, True),
    "eval.max_items": (1, True),
    "method.l1_lambda": (0.0, True),
}
UNIT_INTERVAL = (
    "finetune.warmup_ratio",
    "pretrain.warmup_ratio",
    "degenerate_floor",
    "model.lora.lora_dropout",
)
# method hyper-parameters: weights and scales are >= 0, temperatures/β > 0
METHOD_NON_NEGATIVE_SUFFIXES = ("_weight", "_scale", "alpha", "gamma")
METHOD_POSITIVE = ("beta",)


def _number(cfg: DictConfig, key: str) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key, default=None)


def _refuse(key: str, value: Any, why: str, fix: str) -> ClearConfigError:
    return ClearConfigError(f"{key}={value!r} {why}", fix)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_numbers(cfg: DictConfig) -> None:
    for key, (low, inclusive) in POSITIVE.items():
        value = _number(cfg, key)
        if value is None:
            continue
        if not _is_number(value):
            raise _refuse(key, value, "is not a number", f"set {key} to a number")
        if value < low or (value == low and not inclusive):
            bound = f">= {low}" if inclusive else f"> {low}"
            why = f"must be {bound}"
            if (key == "optim.lr" and value == 0) or (key == "optim.epochs" and value < 1):  # a no-op run
                why += ": no optimiser step would be taken and the run would report the original's scores"
            raise _refuse(key, value, why, f"set {key} {bound}")
    for key in UNIT_INTERVAL:
        value = _number(cfg, key)
        if value is not None and (not _is_number(value) or not 0.0 <= value <= 1.0):
            raise _refuse(key, value, "is not a probability in [0, 1]", f"set {key} between 0 and 1")
    # bootstrap.n_boot / bootstrap.level: metrics.summarizer.BootstrapSettings, instantiated by compose
    for name, value in (cfg.get("method") or {}).items():
        if not _is_number(value) or name in ("seed", "layer"):
            continue
        key = f"method.{name}"
        if name in METHOD_POSITIVE and value <= 0:
            raise _refuse(key, value, "must be > 0", f"set {key} > 0")
        if name.endswith(METHOD_NON_NEGATIVE_SUFFIXES) and value < 0:
            raise _refuse(key, value, "is a weight and must be >= 0", f"set {key} >= 0")


def _looks_local(location: str) -> bool:
    """A filesystem path rather than a hub id (`owner/name`)."""
    return location.startswith(("/", ".", "~")) or location.count("/") != 1 or Path(location).exists()


def check_paths(cfg: DictConfig) -> None:
    checkpoint = cfg.eval.get("checkpoint")
    if checkpoint:
        path = Path(str(checkpoint)).expanduser()
        if _looks_local(str(checkpoint)) and not path.exists():
            raise ClearConfigError(
                f"eval.checkpoint={checkpoint} does not exist", "pass eval.checkpoint=<model or adapter dir>"
            )
        if path.is_file():
            raise ClearConfigError(
                f"eval.checkpoint={checkpoint} is a file, not a checkpoint directory",
                "pass the directory that holds config.json (a model) or adapter_config.json (a LoRA adapter)",
            )
    gold = cfg.eval.get("gold")
    if gold:
        if cfg.stage not in ("unlearn", "eval"):
            raise ClearConfigError(
                f"eval.gold is set, but stage={cfg.stage} scores no model against gold",
                "drop eval.gold, or use stage=unlearn / stage=eval",
            )
        if not (Path(str(gold)) / "meta.json").is_file():
            raise ClearConfigError(
                f"eval.gold={gold} is not a gold evaluation directory (no meta.json there)",
                "point eval.gold at the directory a gold stage printed (artifacts/eval/<key>), or drop it "
                "to use the stored gold evaluation of this split",
            )
    data = cfg.data
    for key in ("path", "tofu_path", "prior_path"):
        location = data.get(key)
        if location and _looks_local(str(location)) and not Path(str(location)).expanduser().exists():
            raise ClearConfigError(
                f"data.{key}={location} does not exist",
                f"point data.{key} at a local snapshot directory or a hub id (owner/name)",
            )


def check_sets(cfg: DictConfig) -> None:
    """eval.sets and eval.probes name known sets, and the probes are probe sets (they stay out of aggregates)."""
    for key in ("sets", "probes"):
        for name in cfg.eval.get(key) or ():
            if name not in EVAL_SETS:
                raise ClearConfigError(
                    f"eval.{key} names '{name}', which is no evaluation set",
                    f"use evaluation sets from {', '.join(EVAL_SETS)}",
                )
            if key == "probes" and name not in PROBE_SETS:
                raise ClearConfigError(
                    f"eval.probes names '{name}', which is not a probe set (it enters the aggregates)",
                    f"list it in eval.sets; eval.probes takes {', '.join(PROBE_SETS)}",
                )


def check(cfg: DictConfig) -> None:
    """All of the above; called by `compose.assemble` before any object is built."""
    check_numbers(cfg)
    check_paths(cfg)
    check_sets(cfg)
