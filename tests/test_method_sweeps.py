"""The sweep files compose, job by job, exactly as `python -m clear_lightning --config-dir sweeps -m` would."""

from __future__ import annotations

import itertools
import re

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from clear_lightning.config import CONFIG_DIR, PROJECT_ROOT, options

SWEEPS = PROJECT_ROOT / "sweeps"
METHODS = options("method")
SEARCH = f"hydra.searchpath=[file://{CONFIG_DIR}]"  # what --config-dir sweeps adds: the sweeps find `config`


def _values(group: str, spec: str) -> list[str]:
    """A sweeper value list: `a,b,c`, or `glob(*,exclude=_*)` over a config group's options."""
    glob = re.fullmatch(r"glob\(\*(?:,exclude=_\*)?\)", spec)
    if glob:
        assert "exclude=_*" in spec, f"{group}: glob(*) would also sweep the _base YAML"
        return options(group)
    return spec.split(",")


def _jobs(name: str) -> list:
    """Job configs of a sweep, composed with Hydra's public compose API: the sweep's params crossed."""
    with initialize_config_dir(str(SWEEPS), version_base="1.3"):
        master = compose(name, overrides=[SEARCH], return_hydra_config=True)
        params = {k: _values(k, str(v)) for k, v in master.hydra.sweeper.params.items()}
        jobs = []
        for num, combo in enumerate(itertools.product(*params.values())):
            overrides = [f"{k}={v}" for k, v in zip(params, combo, strict=True)]
            job = [SEARCH, *overrides, f"hydra.job.num={num}"]  # as the sweeper numbers its jobs
            jobs.append(compose(name, overrides=job, return_hydra_config=True))
    return jobs


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


def test_robustness_sweep_attacks_every_method_on_both_three_seeds() -> None:
    jobs = _jobs("robustness")
    cells = {_resolved(j, "method.name", "modality.name", "split.name", "seed") for j in jobs}
    assert cells == {(m, "both", "forget10", s) for m in METHODS for s in (0, 1, 2)}
    assert len({j.hydra.sweep.subdir for j in jobs}) == len(jobs)
    assert all(
        set(j.attacks) == {"relearn", "relearn_cross_modal", "quantize", "interpolate", "rephrase", "mia"}
        for j in jobs
    )
