"""`python -m clear_lightning.cv method=scrub_bio` (one method) or `stage=table` (every method): the CV track."""

from ..config import offline_by_default, register_resolvers

offline_by_default()

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from ..errors import run_or_exit  # noqa: E402

register_resolvers()


@hydra.main(config_path="../../conf/cv", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    import logging

    from ..logging_setup import quiet_libraries

    quiet_libraries()
    logging.basicConfig(level=logging.INFO, format="[cv] %(message)s", force=True)
    from .run import run

    run_or_exit(run, cfg)


if __name__ == "__main__":
    main()
