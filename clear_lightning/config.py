"""OmegaConf resolvers used by `conf/`, registered before Hydra composes."""

from __future__ import annotations

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
