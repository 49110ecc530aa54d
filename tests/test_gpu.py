"""CUDA checks (`make test-gpu`, skipped elsewhere): the tiny pipeline in bf16 and with QLoRA 4-bit, and the
memory claim of the shared reference model at tiny scale. `make bench-gpu` measures the 7B configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clear_lightning.pipeline import run

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_pipeline_on_cuda_in_bf16_then_qlora(make_cfg, tmp_path: Path) -> None:
    for overrides in ([], ["model.quantization=4bit"]):
        cfg = make_cfg(f"paths.root={tmp_path}", "experiment=gpu_smoke", "method=npo", *overrides, fast=False)
        summary = run(cfg)["summary"]
        assert summary["forget_quality"] is not None
        assert summary["config"]["trainer"]["precision"] == "bf16-mixed"


def test_shared_reference_uses_less_gpu_memory_than_a_copy(tmp_path: Path) -> None:
    from clear_lightning.bench_gpu import run as bench

    report = bench("tiny", device="cuda", steps=3, warmup=1, workdir=tmp_path)
    by = {r["variant"]: r for r in report["results"]}
    assert by["lora_bf16"]["peak_memory_gb"] < by["copy_reference"]["peak_memory_gb"]
    assert by["qlora_4bit"]["peak_memory_gb"] < by["lora_bf16"]["peak_memory_gb"]
