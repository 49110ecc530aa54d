"""OmegaConf resolvers used by `conf/`, registered before Hydra composes."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "conf"


def register_resolvers() -> None:
    """`${clear_root:}` = the project root (no dependence on the working directory);
    `${run_label:stage,method}` = the method for unlearning runs, else the stage name."""
    OmegaConf.register_new_resolver("clear_root", lambda: str(PROJECT_ROOT), replace=True)
    OmegaConf.register_new_resolver(
        "run_label", lambda stage, method: method if stage == "unlearn" else stage, replace=True
    )


def offline_by_default() -> None:
    """Nothing is downloaded unless the user asks for it (HF_*_OFFLINE=0); W&B logs offline unless told."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("WANDB_MODE", "offline")
