"""`python -m clear_lightning method=gd modality=both split=forget10` — the one command."""

from .config import offline_by_default, register_resolvers

offline_by_default()  # before the stack is imported: the libraries read these at import time

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from .errors import run_or_exit  # noqa: E402

register_resolvers()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from .logging_setup import quiet_libraries

    quiet_libraries()  # before importing the stack: some libraries complain at import time
    from .pipeline import run
    from .sweeps import in_multirun, run_job

    if in_multirun():  # a failed job is recorded and the sweep goes on; the sweep's end lists the failures
        run_job(run, cfg)
    else:
        run_or_exit(run, cfg)


if __name__ == "__main__":
    main()
