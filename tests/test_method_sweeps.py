"""The sweep files compose, job by job, exactly as `python -m clear_lightning --config-dir sweeps -m` would."""

from __future__ import annotations

from pathlib import Path

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import create_config_search_path
from hydra.core.config_search_path import SearchPathQuery
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import OmegaConf

from clear_lightning.config import CONFIG_DIR, PROJECT_ROOT

SWEEPS = PROJECT_ROOT / "sweeps"
METHODS = sorted(p.stem for p in (Path(CONFIG_DIR) / "method").glob("*.yaml"))


def _jobs(name: str) -> list:
    """Job configs of a sweep: search path as with --config-dir, params split by Hydra's basic sweeper."""
    search_path = create_config_search_path(str(CONFIG_DIR))
    search_path.prepend("command-line", f"file://{SWEEPS}", anchor=SearchPathQuery(provider="schema"))
    loader = ConfigLoaderImpl(config_search_path=search_path)
    master = loader.load_configuration(name, overrides=[], run_mode=RunMode.MULTIRUN)
    params = [f"{k}={v}" for k, v in master.hydra.sweeper.params.items()]
    overrides = OverridesParser.create(config_loader=loader).parse_overrides(params)
    jobs = [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
    return [loader.load_sweep_config(master, job) for job in jobs]


def _resolved(cfg, *keys: str) -> tuple:
    return tuple(OmegaConf.select(cfg, k) for k in keys)


def test_multimodal_table_is_every_method_times_every_modality() -> None:
    jobs = _jobs("multimodal_table")
    cells = {_resolved(j, "method.name", "modality.name", "split.name") for j in jobs}
    assert len(jobs) == len(cells) == 3 * len(METHODS)
    assert {c[0] for c in cells} == set(METHODS) and {c[2] for c in cells} == {"forget10"}
    for job in jobs:
        OmegaConf.to_container(job.method, resolve=True)  # e.g. rmu's ${model.rmu_layer}, ${seed}
        assert job.stage == "unlearn" and job.method.lora is True


def test_l1_ablation_crosses_methods_with_lambda_in_distinct_folders() -> None:
    jobs = _jobs("l1_ablation")
    assert {_resolved(j, "method.name", "method.l1_lambda") for j in jobs} == {
        (m, lam) for m in METHODS for lam in (0.0, 0.01)
    }
    assert len({j.hydra.sweep.subdir for j in jobs}) == len(jobs) == 2 * len(METHODS)


def test_seeds_sweep() -> None:
    jobs = _jobs("seeds")
    assert [j.seed for j in jobs] == [0, 1, 2]
    assert len({j.hydra.sweep.subdir for j in jobs}) == 3
