"""The resumable loop over model indices: skips finished (model, method) artifacts, runs the rest in this
process or in `workers` spawned processes, each on a device from `devices`, with a log line per model."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

import torch
from omegaconf import OmegaConf

from .shadow import ORIGINAL, ModelResult, Protocol

log = logging.getLogger(__name__)


def _work(
    cfg: dict[str, Any], index: int, methods: dict[str, dict[str, Any]], device: str, threads: int
) -> int:
    """One model index, in a worker process or in-process: original, then each missing method."""
    if threads > 0:
        torch.set_num_threads(threads)
    from ..logging_setup import quiet_libraries

    quiet_libraries()
    protocol = Protocol(cfg)
    plan = protocol.plans[index]
    protocol.original(plan, device)
    for method_cfg in methods.values():
        protocol.unlearn(plan, method_cfg, device)
    return index


def run_models(protocol: Protocol, methods: dict[str, dict[str, Any]]) -> dict[str, list[ModelResult]]:
    """Build every missing (model, method) artifact, then load all results: {"original" | method: [per model]}."""
    cfg = protocol.cfg
    devices = list(cfg.devices) or ["cpu"]
    workers = max(1, int(cfg.workers))
    todo = {}
    for plan in protocol.plans:
        missing = {n: m for n, m in methods.items() if protocol.result_path(plan, n, m) is None}
        if missing or protocol.result_path(plan, ORIGINAL, None) is None:
            todo[plan.index] = missing
    total, start = len(protocol.plans), time.perf_counter()
    log.info("%d of %d models have missing results (%d workers)", len(todo), total, workers)
    container = OmegaConf.to_container(cfg, resolve=True)
    threads = int(cfg.threads)
    if threads > 0:
        torch.set_num_threads(threads)
    protocol.base(devices[0])  # once, before any worker needs it

    def done(index: int, k: int) -> None:
        log.info("model %d done (%d/%d, %.0fs)", index, k, len(todo), time.perf_counter() - start)

    if workers == 1:
        for k, (index, missing) in enumerate(todo.items(), 1):
            _work(container, index, missing, devices[index % len(devices)], threads)
            done(index, k)
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            jobs = [
                pool.submit(_work, container, i, m, devices[i % len(devices)], threads)
                for i, m in todo.items()
            ]
            for k, job in enumerate(as_completed(jobs), 1):
                done(job.result(), k)
    results: dict[str, list[ModelResult]] = {}
    for name, method_cfg in {ORIGINAL: None, **methods}.items():
        paths = [protocol.result_path(plan, name, method_cfg) for plan in protocol.plans]
        results[name] = [ModelResult.load(p) for p in paths if p is not None]
    return results
