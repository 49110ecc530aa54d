"""What a run needs to be reproduced: resolved config, seed, package versions, data revision, code version."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "torch",
    "lightning",
    "hydra-core",
    "omegaconf",
    "transformers",
    "tokenizers",
    "peft",
    "torchmetrics",
    "datasets",
    "rouge-score",
    "scipy",
    "numpy",
    "bitsandbytes",
    "wandb",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def code_version() -> str | None:
    """The git commit of the code (with '+dirty' when it has uncommitted changes), if it is a checkout."""
    repo = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _threads() -> dict[str, Any]:
    """What decides how CPU work is split, hence the rounding of its reductions."""
    import os

    import torch

    return {
        "torch_intra_op": torch.get_num_threads(),
        "torch_inter_op": torch.get_num_interop_threads(),
        **{var: os.environ.get(var) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED")},
        "cpu_count": os.cpu_count(),
    }


def provenance(seed: int, data_revision: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "seed": seed,
        "data_revision": data_revision,
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "code_version": code_version(),
        "command": " ".join(sys.argv),
        "threads": _threads(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    }
