"""Shared fixtures: the real Hydra config composed with overrides, and one tiny pipeline per session."""

from __future__ import annotations

import os

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_var] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from clear_lightning.config import CONFIG_DIR, register_resolvers  # noqa: E402

register_resolvers()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regenerate-golden",
        action="store_true",
        help="print tests/test_golden.py's numbers instead of checking",
    )


@pytest.fixture(scope="session")
def clear_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact root for the whole session, so tiny models are built once and reused."""
    from clear_lightning.logging_setup import quiet_libraries

    quiet_libraries()
    return tmp_path_factory.mktemp("clear_home")


@pytest.fixture(scope="session")
def make_cfg(clear_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """Compose the real config (debug=fast) with overrides, pointed at the session's artifact root."""
    counter = iter(range(1_000_000))

    def _make(*overrides: str, fast: bool = True) -> DictConfig:
        run_dir = tmp_path_factory.mktemp(f"run{next(counter)}")
        base = [f"paths.root={clear_home}", f"run_dir={run_dir}"] + (["debug=fast"] if fast else [])
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            return compose("config", overrides=base + list(overrides))

    return _make


@pytest.fixture(scope="session")
def unlearn_result(make_cfg):
    """The default pipeline (gd, forget10, both) on the fast config: builds base, original, gold, evals."""
    from clear_lightning.pipeline import run

    cfg = make_cfg()
    return cfg, run(cfg)


@pytest.fixture(scope="session")
def tiny_checkpoint(unlearn_result) -> Path:
    """The stored original model of the fast config (a real from_pretrained directory)."""
    from clear_lightning.pipeline.compose import assemble
    from clear_lightning.pipeline.upstream import finetuned_model

    cfg, _ = unlearn_result
    path, _ = finetuned_model(assemble(cfg), "original", build=False)
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matrices: OpenMP threads only contend (20× slower on a busy 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
