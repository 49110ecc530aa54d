"""Stage dispatch of the CV track: one method (`stage=unlearn`) or every method (`stage=table`)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..config import CONFIG_DIR
from ..errors import ClearConfigError
from .loop import run_models
from .shadow import Protocol
from .table import write_table

log = logging.getLogger(__name__)
METHOD_DIR = CONFIG_DIR / "cv" / "method"


def method_configs(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """The chosen method, or for the table every method named in `table.methods` (read from its YAML)."""
    if cfg.stage == "unlearn":
        chosen = [cfg.method]
    elif cfg.stage == "table":
        chosen = []
        for name in cfg.table.methods:
            path = METHOD_DIR / f"{name}.yaml"
            if not path.exists():
                raise ClearConfigError(f"no CV method config {path}", f"use one of: {_known()}")
            chosen.append(OmegaConf.load(path))
    else:
        raise ClearConfigError(
            f"unknown CV stage {cfg.stage!r}", "use stage=unlearn (one method) or stage=table"
        )
    return {m.name: OmegaConf.to_container(m, resolve=True) for m in chosen}


def _known() -> str:
    return ", ".join(sorted(p.stem for p in METHOD_DIR.glob("*.yaml")))


def run(cfg: DictConfig) -> list[dict[str, Any]]:
    """Build/reuse the N models for the chosen method(s), write the table and plots into run_dir."""
    start = time.perf_counter()
    methods = method_configs(cfg)
    protocol = Protocol(cfg)
    results = run_models(protocol, methods)
    seconds = time.perf_counter() - start
    out = Path(cfg.run_dir)
    note = (
        f"{len(protocol.plans)} models ({cfg.protocol.attacks} attack folds), {len(protocol.faces.names)} persons, "
        f"forget persons {protocol.forget}; this run took {seconds:.0f} s (finished models are reused)."
    )
    rows = write_table(out, results, protocol.forget, cfg.protocol.attacks, int(cfg.seed), note)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (out / "timing.json").write_text(json.dumps({"seconds": seconds}))
    print((out / "table.md").read_text())
    print(f"results in {out}")
    return rows
