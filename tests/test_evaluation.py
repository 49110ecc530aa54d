"""Evaluation on stored runs: generation sees the image, aggregates recompute from JSONL, gold is checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from scipy.stats import ks_2samp

from clear_lightning.errors import ClearConfigError
from clear_lightning.evaluation.module import Evaluator, _per_item
from clear_lightning.evaluation.records import read_records
from clear_lightning.metrics.summary import summarize
from clear_lightning.pipeline.compose import assemble
from clear_lightning.pipeline.evaluation import load_gold


def test_per_item_scatter_of_candidate_losses() -> None:
    row_loss = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    row_item = torch.tensor([0, 0, 0, 1, 1, 1])
    row_role = torch.tensor([0, 1, 2, 0, 2, 2])  # item 1 has no paraphrase
    loss, para, perturbed = _per_item(row_loss, row_item, row_role, 2)
    assert loss.tolist() == [1.0, 4.0] and para.tolist() == [2.0, 4.0]
    assert perturbed[0, 0] == 3.0 and torch.isnan(perturbed[0, 1]) and perturbed[1].tolist() == [5.0, 6.0]


def test_generation_receives_pixel_values_for_image_items(tiny_checkpoint) -> None:
    from clear_lightning.models.load import load_model, load_processor

    model, processor = load_model(str(tiny_checkpoint)), load_processor(str(tiny_checkpoint))
    seen = []
    original = model.generate

    def spy(**kwargs):
        seen.append(kwargs.get("pixel_values"))
        return original(**kwargs)

    model.generate = spy
    evaluator = Evaluator(model, processor.tokenizer, ["x"], max_new_tokens=2)
    image = processor.tokenizer.convert_tokens_to_ids("<image>")
    ids = torch.tensor([[2] + [image] * 16 + [5, 6]])
    text_ids = torch.tensor([[2, 5, 6]])
    evaluator.generate(
        {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": torch.zeros(1, 3, 32, 32)}
    )
    evaluator.generate(
        {"input_ids": text_ids, "attention_mask": torch.ones_like(text_ids), "pixel_values": None}
    )
    assert seen[0] is not None and seen[0].shape == (1, 3, 32, 32)
    assert seen[1] is None  # text-only batches pass no image at all


def test_summary_recomputes_exactly_from_the_jsonl(unlearn_result) -> None:
    cfg, result = unlearn_result
    run_dir = Path(cfg.run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    gold = read_records(Path(result["gold_eval"]) / "eval")
    again = summarize(read_records(run_dir / "eval"), gold)
    for key, value in again.items():
        assert (
            summary[key] == pytest.approx(value, nan_ok=True) if value is not None else summary[key] is None
        ), key


def test_forget_quality_is_scipy_ks_on_stored_records(unlearn_result) -> None:
    cfg, result = unlearn_result
    model = read_records(Path(cfg.run_dir) / "eval")
    gold = read_records(Path(result["gold_eval"]) / "eval")
    names = sorted(n for n in model if n.startswith("forget_"))
    r_model = [r["truth_ratio"] for n in names for r in model[n]]
    r_gold = [r["truth_ratio"] for n in names for r in gold[n]]
    summary = json.loads((Path(cfg.run_dir) / "summary.json").read_text())
    assert summary["forget_quality"] == pytest.approx(ks_2samp(r_model, r_gold).pvalue)


def test_gold_of_another_split_is_refused(unlearn_result, make_cfg, tmp_path: Path) -> None:
    _, result = unlearn_result
    p = assemble(make_cfg("split=forget05"))
    with pytest.raises(ClearConfigError, match=r"(?s)split='forget10'.*this run has 'forget05'.*fix:"):
        load_gold(p, Path(result["gold_eval"]))
    with pytest.raises(ClearConfigError, match="no gold evaluation metadata"):
        load_gold(p, tmp_path)


def test_gold_with_another_truth_ratio_mean_or_item_cap_is_refused(unlearn_result, make_cfg) -> None:
    _, result = unlearn_result
    gold = Path(result["gold_eval"])
    with pytest.raises(ClearConfigError, match=r"(?s)truth_ratio_mean='arithmetic'.*'geometric'.*fix:"):
        load_gold(assemble(make_cfg("eval.truth_ratio_mean=geometric")), gold)
    with pytest.raises(ClearConfigError, match=r"(?s)max_items=4.*this run has 3"):
        load_gold(assemble(make_cfg("eval.max_items=3")), gold)


def test_reference_compat_mode_writes_its_own_summary(unlearn_result, make_cfg) -> None:
    from clear_lightning.pipeline import run

    cfg = make_cfg("metric_mode=reference_compat", "method=ga")
    assert cfg.eval.generation == "text_only_legacy" and cfg.eval.real_world_column == "question"
    result = run(cfg)
    summary = result["summary"]
    assert summary["metric_mode"] == "reference_compat" and summary["generation"] == "text_only_legacy"
    assert summary["compat_excluded_sets"] == [
        "forget_qa",
        "holdout_caption",
        "holdout_face_name",
        "holdout_qa",
        "retain_qa",
    ]
    assert "forget_qa/probability" not in summary and summary["forget_quality"] is not None
    records = read_records(Path(cfg.run_dir) / "eval")
    rows = assemble(cfg).source.load("clear", "real_world")
    assert [r["question"] for r in records["real_world"]] == rows["question"][: len(records["real_world"])]
    assert rows["question"][0] != rows["prompt"][0]  # the authors' column, not paper mode's prompt
    with pytest.raises(ClearConfigError, match="unknown metric_mode"):
        run(make_cfg("metric_mode=nope"))


def test_text_only_legacy_generation_drops_the_image(tiny_checkpoint) -> None:
    from clear_lightning.models.load import load_model, load_processor

    model, processor = load_model(str(tiny_checkpoint)), load_processor(str(tiny_checkpoint))
    seen = []
    original = model.generate

    def spy(**kwargs):
        seen.append(kwargs)
        return original(**kwargs)

    model.generate = spy
    evaluator = Evaluator(model, processor.tokenizer, ["x"], max_new_tokens=2, generation="text_only_legacy")
    tok = processor.tokenizer
    image = tok.convert_tokens_to_ids("<image>")
    words = tok("USER: hi ASSISTANT:", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[tok.bos_token_id] + [image] * 16 + words])
    evaluator.generate(
        {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": torch.zeros(1, 3, 32, 32)}
    )
    assert "pixel_values" not in seen[0]
    assert image not in seen[0]["input_ids"][0].tolist()  # the placeholder was a special token: decoded away
    assert tok.decode(seen[0]["input_ids"][0], skip_special_tokens=True) == tok.decode(words)
    with pytest.raises(ValueError, match="eval.generation"):
        Evaluator(model, tok, ["x"], generation="nope")


def test_answer_eos_switch_changes_only_the_scored_tokens(unlearn_result, make_cfg, tiny_checkpoint) -> None:
    from clear_lightning.models.load import load_model, load_processor
    from clear_lightning.pipeline.evaluation import evaluate

    model, processor = load_model(str(tiny_checkpoint)), load_processor(str(tiny_checkpoint))
    sets = "eval.sets=[forget_qa]"
    with_eos, _ = evaluate(assemble(make_cfg(sets, "eval.max_items=2")), model, processor)
    without, _ = evaluate(
        assemble(make_cfg(sets, "eval.max_items=2", "eval.answer_eos=false")), model, processor
    )
    a, b = with_eos["forget_qa"][0], without["forget_qa"][0]
    assert a["generation"] == b["generation"] and a["loss"] != b["loss"]


def test_empty_evaluation_set_is_refused(unlearn_result, make_cfg, tmp_path: Path) -> None:
    import datasets

    from clear_lightning.data.source import SnapshotSource

    cfg, _ = unlearn_result
    mini = next(Path(cfg.paths.artifacts, "data").iterdir())
    copy = tmp_path / "CLEAR"
    shutil.copytree(mini / "CLEAR", copy)
    empty = datasets.load_dataset(str(copy), "real_world", split="train").select([])
    empty.to_parquet(str(next((copy / "real_world").glob("*.parquet"))))
    source = SnapshotSource("copy", str(copy), str(mini / "TOFU"))
    with pytest.raises(ClearConfigError, match="real_world.*has no rows"):
        source.load("clear", "real_world")
