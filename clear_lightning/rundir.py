"""The files that say what became of a run directory, named once (written by the pipeline and the sweep runner,
read by the report; no heavy imports, so the report stays light)."""

CLAIM = ".clear_lightning_run"  # created exclusively by the run that owns the directory (pipeline.root.claim)
FAILURE = "failure.json"  # a failed multirun job's exception, fix and overrides (sweeps.record_failure)
DONE = "stage.json"  # written when a stage has finished
