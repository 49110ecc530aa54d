"""The same command gives the same numbers: fixed thread counts, content digests, provenance that explains a build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clear_lightning.artifacts import file_digests


def test_artifacts_store_content_digests_and_runs_record_threads(unlearn_result) -> None:
    cfg, result = unlearn_result
    original = next(Path(cfg.paths.artifacts, "original").iterdir())
    meta = json.loads((original / "artifact.json").read_text())
    assert meta["digests"] == file_digests(original)  # the stored digests are the content's
    assert any(name.endswith("model.safetensors") for name in meta["digests"])
    assert "threads=1" in meta["key"]["precision"]  # the thread count is part of what determines it
    provenance = json.loads((Path(cfg.run_dir) / "provenance.json").read_text())
    assert provenance["threads"]["torch_intra_op"] == 1
    loaded = provenance["loaded"]
    assert loaded and all("model.safetensors" in d and "tokenizer.json" in d for d in loaded.values())


def test_bad_thread_count_is_refused(make_cfg) -> None:
    from clear_lightning.errors import ClearConfigError
    from clear_lightning.pipeline import run

    with pytest.raises(ClearConfigError, match="threads=0"):
        run(make_cfg("threads=0"))


@pytest.mark.slow
def test_two_builds_in_two_processes_and_thread_counts_are_identical(tmp_path: Path) -> None:
    """The upstream models built from nothing under OMP_NUM_THREADS=1 and =2, each in its own process."""
    fast = [
        "--override=debug=fast",
        "--override=data.num_persons=10",
    ]
    cmd = [
        sys.executable,
        "-m",
        "clear_lightning.testbed",
        "--out",
        str(tmp_path / "out"),
        "--threads",
        "1,2",
    ]
    cmd += ["--seeds", "0", "--root", str(tmp_path / "roots"), "--floor", "0", "--margin", "-1", *fast]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    report = json.loads((tmp_path / "out" / "testbed.json").read_text())
    first, second = report["results"]
    assert first["digests"] == second["digests"]
    assert report["agreement"][0]["identical_weights"]
    assert (tmp_path / "out" / "testbed.md").read_text().count("| t") >= 2
