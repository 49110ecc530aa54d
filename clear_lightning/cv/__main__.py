"""`python -m clear_lightning.cv method=scrub_bio` (one method) or `stage=table` (every method): the CV track."""

import os
import sys

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from ..config import register_resolvers  # noqa: E402
from ..errors import ClearConfigError  # noqa: E402

register_resolvers()


@hydra.main(config_path="../../conf/cv", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    import logging

    from ..logging_setup import quiet_libraries

    quiet_libraries()
    logging.basicConfig(level=logging.INFO, format="[cv] %(message)s", force=True)
    from .run import run

    try:
        run(cfg)
    except ClearConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
