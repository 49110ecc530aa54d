"""The pipeline, one file per concern, read top to bottom:

- `compose`    the composition root: `assemble(cfg)` validates the config and builds the run's objects (the only
               config reader)
- `components` the typed objects a stage receives (`Pipeline`, `Settings`, `Recipe`, `TrainerFactory`)
- `stages`     pretrain, finetune, gold, unlearn, eval: one short function each
- `upstream`   the base, original and gold models as artifacts (original and gold built side by side)
- `fit`        the supervised fits that build them, and fixed thread counts
- `evaluation` `trainer.test` of the evaluator, stored evaluations, the gold identity check
- `results`    per-item records, summary.json, loggers
- `root`       `run(cfg)`: assemble, then run one stage
"""

from .root import run

__all__ = ["run"]
