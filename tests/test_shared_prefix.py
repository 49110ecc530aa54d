"""Shared-prefix scoring: every candidate's loss equals its full row's, on every evaluation set of the tiny model
(image rows, text-only rows, items with and without a paraphrase, different numbers of perturbations)."""

from __future__ import annotations

import pytest

from clear_lightning.data.batching import shared_prefix_layout
from clear_lightning.data.encoding import IGNORE_INDEX
from clear_lightning.models.load import load_model, load_processor
from clear_lightning.pipeline.compose import assemble
from clear_lightning.pipeline.evaluation import evaluate


def test_layout_cuts_before_the_first_supervised_token() -> None:
    rows = [
        {"input_ids": [1, 2, 3, 4, 5], "labels": [IGNORE_INDEX] * 3 + [4, 5]},
        {"input_ids": [1, 2, 3, 9], "labels": [IGNORE_INDEX] * 3 + [9]},
        {"input_ids": [1, 2, 7, 8], "labels": [IGNORE_INDEX] * 2 + [7, 8]},  # a merge moved its join one left
    ]
    out = shared_prefix_layout([rows], pad_id=0)
    assert out["prefix_len"].tolist() == [2]
    assert out["prefix"]["input_ids"].tolist() == [[1, 2]]
    assert out["cont"]["input_ids"].tolist() == [[3, 4, 5], [3, 9, 0], [7, 8, 0]]
    assert out["cont"]["labels"].tolist() == [
        [IGNORE_INDEX, 4, 5],
        [IGNORE_INDEX, 9, IGNORE_INDEX],
        [7, 8, IGNORE_INDEX],
    ]


def test_shared_prefix_losses_equal_full_rows_on_every_set(tiny_checkpoint, make_cfg, one_thread) -> None:
    model, processor = load_model(str(tiny_checkpoint)), load_processor(str(tiny_checkpoint))
    shared, seconds = evaluate(assemble(make_cfg("eval.shared_prefix=true")), model, processor)
    full, full_seconds = evaluate(assemble(make_cfg("eval.shared_prefix=false")), model, processor)
    assert seconds["shared_prefix"] is True and full_seconds["shared_prefix"] is False
    assert 0.0 <= seconds["generate_share"] <= 1.0
    assert sorted(shared) == sorted(full) and len(shared) >= 8
    kinds = {r["kind"] for rows in full.values() for r in rows}
    assert {"qa", "caption", "face_name", "multiple_choice"} <= kinds
    widths = {len(r["losses_perturbed"]) for rows in full.values() for r in rows}
    assert len(widths) > 1  # items with different numbers of candidates in the comparison
    for name in full:
        for a, b in zip(shared[name], full[name], strict=True):
            assert a["id"] == b["id"] and a["generation"] == b["generation"]  # greedy generation unchanged
            assert a["loss"] == pytest.approx(b["loss"], abs=1e-5), (name, a["id"])
            assert a["loss_paraphrased"] == pytest.approx(b["loss_paraphrased"], abs=1e-5)
            assert a["losses_perturbed"] == pytest.approx(b["losses_perturbed"], abs=1e-5)


def test_bench_entry_at_tiny_scale_through_the_model_config_path(one_thread) -> None:
    """`make bench-gpu`'s path (a conf/model LLaVA, random-init from its config) at tiny scale on the CPU."""
    from clear_lightning.bench_eval import markdown, run

    result = run(items=2, batch_size=2, threads=1, model_name="tiny_llava")
    assert result["image_tokens_per_row"] == 16 and result["token_ratio"] > 1.0
    assert "shared prefix" in "\n".join(markdown(result))
