"""Robustness attacks (issue 14): leak/probe splits, gold's own residual, interpolation end points, quantisation,
and `stage=attack` on a finished run."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from clear_lightning.attacks.base import LABELS, AttackContext, Subject, residuals
from clear_lightning.attacks.interpolate import interpolate
from clear_lightning.attacks.quantize import quantized_linears
from clear_lightning.attacks.relearn import Relearn, leak_probe
from clear_lightning.data.examples import Example

# --- relearning's split, on synthetic items -------------------------------------------------------------------


def _items() -> dict[str, list[Example]]:
    qa = [
        Example(f"forget_qa/{i}", "forget_qa", "qa", f"q{i}", f"a{i}", person=f"forget/{i // 4}")
        for i in range(8)
    ]
    image = object()
    visual = {
        name: [
            Example(f"{name}/{i}", name, kind, "p", f"c{i}", image, person=f"forget/{i // 3}")
            for i in range(6)
        ]
        for name, kind in (("forget_caption", "caption"), ("forget_face_name", "face_name"))
    }
    return {"forget_qa": qa, **visual}


def _fake_context(items: dict[str, list[Example]], seen: dict) -> AttackContext:
    def fit(model, processor, rows, epochs, lr, batch_size):
        seen["trained"] = [r.id for r in rows]
        return model

    def evaluate(model, processor, sets, transform=None):
        seen["probed"] = {n: [i.id for i in transform(n, items[n])] for n in sets}
        return {n: [] for n in sets}

    return AttackContext(
        seed=0,
        evaluate=evaluate,
        fit=fit,
        eval_items=lambda name: items[name],
        forget_rows=lambda: [],
        holdout_rows=lambda: [],
        forget_sets=tuple(items),
        retain_sets=(),
        original=Subject("original", lambda: (None, None)),
        say=lambda message: None,
    )


def test_leak_and_probe_are_disjoint_halves_of_every_person() -> None:
    items = [i for rows in _items().values() for i in rows]
    leak, probe = leak_probe(items, seed=0)
    assert leak.isdisjoint(probe) and leak | probe == {i.id for i in items}
    for person in {i.person for i in items}:
        mine = {i.id for i in items if i.person == person}
        assert mine & leak and mine & probe  # every person leaks some items and keeps some to probe
    # an image is leaked or probed whole: caption row k and face-name row k land on the same side
    for k in range(6):
        assert (f"forget_caption/{k}" in leak) == (f"forget_face_name/{k}" in leak)
    assert leak_probe(items, seed=0) == (leak, probe)  # seeded
    assert leak_probe(items, seed=1) != (leak, probe)


@pytest.mark.parametrize("leak", ["half", "text"])
def test_relearning_never_trains_on_a_probe_item(leak: str) -> None:
    items, seen = _items(), {}
    Relearn(epochs=1, lr=1e-3, leak=leak).run(
        _fake_context(items, seen), Subject("unlearned", lambda: (None, None))
    )
    probed = {i for ids in seen["probed"].values() for i in ids}
    assert probed and seen["trained"]
    assert probed.isdisjoint(seen["trained"])
    if leak == "text":  # cross-modal: text leaked, every image probed
        assert all(i.startswith("forget_qa/") for i in seen["trained"])
        assert probed == {i.id for n in ("forget_caption", "forget_face_name") for i in _items()[n]}


def test_residuals_by_hand() -> None:
    unlearned = {
        "forget_metric": 0.5,
        "retain_metric": 0.6,
        "forget_qa/rougeL_recall": 0.4,
        "forget_qa/probability": 0.2,
    }
    gold = {
        "forget_metric": 0.1,
        "retain_metric": 0.7,
        "forget_qa/rougeL_recall": 0.3,
        "forget_qa/probability": 0.3,
    }
    r = residuals(unlearned, gold)
    assert r["forget_metric"] == pytest.approx(0.4) and r["retain_metric"] == pytest.approx(-0.1)
    assert r["forget_qa/rougeL_recall"] == pytest.approx(0.1) and r["forget_qa/truth_ratio"] is None
    assert r["mean"] == pytest.approx((0.1 - 0.1) / 2)


# --- on the tiny pipeline -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def attack_pipeline(unlearn_result, make_cfg):
    from clear_lightning.pipeline.compose import assemble
    from clear_lightning.pipeline.robustness import context
    from clear_lightning.pipeline.upstream import references

    p = assemble(make_cfg("attacks=standard"))
    refs = references(p, build=False)
    gold_dir, gold_key, _ = refs["gold"]
    original_dir, original_key, _ = refs["original"]
    models = {
        "gold": Subject("gold", lambda: p.loader.load(gold_dir), gold_key),
        "original": Subject("original", lambda: p.loader.load(original_dir), original_key),
    }
    return p, context(p, models["original"]), models


def test_gold_attacked_as_the_unlearned_model_has_zero_residual(attack_pipeline, one_thread) -> None:
    """Gold is its own reference: every attack, applied to it as if it were the unlearned model (recomputed, not
    read from the cache), leaves no residual knowledge and no privacy leakage."""
    from clear_lightning.pipeline.robustness import attacked

    p, ctx, models = attack_pipeline
    as_unlearned = Subject("unlearned", models["gold"].load)  # no key: attacked afresh
    for name, attack in p.attacks.items():
        results = {
            label: attacked(p, name, attack, ctx, subject)[0]
            for label, subject in (
                ("unlearned", as_unlearned),
                ("gold", models["gold"]),
                ("original", models["original"]),
            )
        }
        entry = attack.score(ctx, results)
        if entry["kind"] == "mia":
            assert all(v["privacy_leakage"] == 0 for v in entry["scores"].values()), name
            continue
        for variant, v in entry["variants"].items():
            assert all(x in (None, 0.0) for x in v["residual"].values()), (name, variant, v["residual"])
        assert entry["residual_forget"] == 0.0, name


def test_interpolation_end_points_are_the_original_and_the_model(attack_pipeline, one_thread) -> None:
    p, ctx, models = attack_pipeline
    anchor, processor = models["original"].load()
    sets = list(ctx.forget_sets)
    reference = {lab: ctx.evaluate(*models[lab].load(), sets) for lab in ("gold", "original")}
    for alpha, label in ((0.0, "original"), (1.0, "gold")):
        model, proc = models["gold"].load()
        interpolate(model, anchor, alpha)
        records = ctx.evaluate(model, proc, sets)
        for name in sets:
            assert [r["loss"] for r in records[name]] == [r["loss"] for r in reference[label][name]], (
                alpha,
                name,
            )
            assert [r["generation"] for r in records[name]] == [
                r["generation"] for r in reference[label][name]
            ]


def test_quantisation_changes_the_weights_dtype_and_evaluates_on_cpu(
    attack_pipeline, one_thread, tmp_path
) -> None:
    p, ctx, models = attack_pipeline
    model, processor = models["gold"].load()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    plain = {n: str(m.weight.dtype) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    for bits, dtype in (("8bit", "torch.int8"), ("4bit", "torch.uint8")):
        quantized, proc = ctx.load_quantized(tmp_path, bits)
        linears = quantized_linears(quantized)
        assert linears and set(linears.values()) == {dtype}, bits
        assert all(plain[n] == "torch.float32" for n in linears)
        records = ctx.evaluate(quantized, proc, list(ctx.forget_sets))
        assert all(r["loss"] == r["loss"] for rows in records.values() for r in rows)  # finite on CPU
        assert next(quantized.parameters()).device.type == "cpu"


def test_stage_attack_on_a_finished_run(unlearn_result, make_cfg, tmp_path) -> None:
    """`stage=attack run=<dir>` attacks a finished run without retraining: robustness.json, per-item records for
    the three models under eval/attacks/, and the robust keys in its summary."""
    from clear_lightning.pipeline import run

    cfg, _ = unlearn_result
    target = tmp_path / "run"
    shutil.copytree(cfg.run_dir, target)
    result = run(make_cfg("stage=attack", f"run={target}", "attacks=standard"))
    assert result["stage"] == "attack"
    robustness = json.loads((target / "robustness.json").read_text())
    assert set(robustness["attacks"]) == {
        "relearn",
        "relearn_cross_modal",
        "quantize",
        "interpolate",
        "rephrase",
        "mia",
    }
    for name in robustness["attacks"]:
        for label in LABELS:
            assert list((target / "eval" / "attacks" / name / label).rglob("*.jsonl")), (name, label)
    summary = json.loads((target / "summary.json").read_text())
    assert summary["robust_forget"] == robustness["robust_forget"]["value"]
    assert {"residual/none", "residual/relearn", "privacy_leakage/loss", "robust_gap_closed"} <= set(summary)
    assert (target / "robustness.png").exists()


def test_stage_attack_refuses_what_it_cannot_attack(make_cfg, tmp_path) -> None:
    from clear_lightning.errors import ClearConfigError
    from clear_lightning.pipeline import run

    with pytest.raises(ClearConfigError, match="needs the run to attack"):
        run(make_cfg("stage=attack", "attacks=standard"))
    with pytest.raises(ClearConfigError, match="not a run directory"):
        run(make_cfg("stage=attack", f"run={tmp_path}", "attacks=standard"))
    with pytest.raises(ClearConfigError, match="relearn leak"):
        run(make_cfg("attacks=standard", "attacks.relearn.leak=images"))
