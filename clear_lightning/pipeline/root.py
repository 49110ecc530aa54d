"""`run(cfg)`: compose the run's objects from the config (the one place that reads it), then run one stage."""

from __future__ import annotations

import json
import time
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..artifacts import is_main_process
from .compose import assemble
from .fit import set_threads
from .stages import STAGES


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run `cfg.stage`; returns its result (also written under `cfg.run_dir`): config errors are raised by
    `compose.assemble`, before anything is built."""
    p = assemble(cfg)
    s = p.settings
    set_threads(s.threads)
    s.run_dir.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        (s.run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        (s.run_dir / "provenance.json").write_text(json.dumps(p.provenance(stage=s.stage), indent=2))
    start = time.perf_counter()
    result = STAGES[s.stage](p)
    result["seconds"] = time.perf_counter() - start
    if is_main_process():
        (s.run_dir / "stage.json").write_text(json.dumps(result, indent=2, default=str))
        # again, now with the digests of every model directory the stage loaded
        (s.run_dir / "provenance.json").write_text(json.dumps(p.provenance(stage=s.stage), indent=2))
    p.say(f"{s.stage} finished in {result['seconds']:.1f} s; results in {s.run_dir}")
    return result
