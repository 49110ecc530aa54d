"""OmegaConf resolvers used by `conf/`, registered before Hydra composes."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "conf"


def register_resolvers() -> None:
    """`${clear_root:}` = the project root (no dependence on the working directory);
    `${run_label:stage,method}` = the method for unlearning runs, else the stage name;
    `${by_metric_mode:mode,paper_value,compat_value}` = an evaluation setting that follows `metric_mode`, so
    `metric_mode=reference_compat` alone switches to the authors' evaluation (benchmark.md §7) and the resolved value
    is what the config, the artifact key and the summary record; `${unique:}` = a per-process suffix of run
    directories; `${wandb_offline:}` = W&B's offline switch, from WANDB_MODE as W&B itself reads it."""
    OmegaConf.register_new_resolver("clear_root", lambda: str(PROJECT_ROOT), replace=True)
    OmegaConf.register_new_resolver(
        "run_label", lambda stage, method: method if stage == "unlearn" else stage, replace=True
    )
    OmegaConf.register_new_resolver("by_metric_mode", _by_metric_mode, replace=True)
    # one value per process (cached): two runs started in the same second never share a run directory
    OmegaConf.register_new_resolver("unique", _unique, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("wandb_offline", _wandb_offline, replace=True)


def _unique() -> str:
    """The process id and 4 random hex digits (not from the seeded generators: no run's numbers move)."""
    return f"{os.getpid()}{os.urandom(2).hex()}"


def _wandb_offline() -> bool:
    """W&B logs offline unless the user sets WANDB_MODE=online (and is logged in), as W&B itself reads it."""
    return os.environ.get("WANDB_MODE", "offline") != "online"


def _by_metric_mode(mode: str, paper: str, compat: str) -> str:
    if mode == "reference_compat":
        return compat
    if mode == "paper":
        return paper
    from .errors import ClearConfigError

    raise ClearConfigError(
        f"unknown metric_mode '{mode}'", "use metric_mode=paper or metric_mode=reference_compat"
    )


def offline_by_default() -> None:
    """Nothing is downloaded unless the user asks for it (HF_*_OFFLINE=0); W&B logs offline unless told."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("WANDB_MODE", "offline")


def options(group: str) -> list[str]:
    """The choosable options of a config group (`method`, `model`, …): its YAML files, without the `_`-prefixed
    bases the options inherit from."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))
