"""Every CLEAR metric against hand-computed values on tiny inputs (benchmark.md §6, §7)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from clear_lightning.metrics.functional import (
    LOG_P_FLOOR,
    forget_quality,
    harmonic_mean,
    knowledge_truth_ratio,
    multiple_choice_probability,
    normalised_probability,
    options_without_answer,
    rouge_l_recall,
    score_record,
    tofu_forget_truth_ratio,
    truth_ratio,
)
from clear_lightning.metrics.items import ItemResults
from clear_lightning.metrics.summary import leaderboard, raw_truth_ratios, set_group, summarize, summarize_set

LN2, LN4, LN8, LN16 = math.log(2), math.log(4), math.log(8), math.log(16)


# ---------------------------------------------------------------- functional


def test_rouge_l_recall_known_strings():
    # reference "the cat sat" (3 tokens) fully contained in order in the generation: LCS 3 / 3
    assert rouge_l_recall("the cat sat on the mat", "the cat sat") == pytest.approx(1.0)
    # reference has 6 tokens, generation "the cat" matches 2 of them in order: 2 / 6
    assert rouge_l_recall("the cat", "the cat sat on the mat") == pytest.approx(2 / 6)
    # nothing in common
    assert rouge_l_recall("dog", "the cat") == 0.0


def test_rouge_l_recall_uses_stemming():
    # Porter stemming maps "running" and "runs" to "run": every reference token is matched
    assert rouge_l_recall("he was running", "he runs") == pytest.approx(1.0)
    assert rouge_l_recall("running", "run") == pytest.approx(1.0)


def test_normalised_probability():
    # exp(-ln 2) = 1/2 ; exp(0) = 1
    assert normalised_probability(LN2) == pytest.approx(0.5)
    assert normalised_probability(0.0) == pytest.approx(1.0)


def test_multiple_choice_probability_hand_computed():
    # P(y) = 1/2, wrong options 1/4 and 1/4: 0.5 / (0.5 + 0.25 + 0.25) = 0.5
    assert multiple_choice_probability(LN2, [LN4, LN4]) == pytest.approx(0.5)
    # P(y) = 1/4, one wrong option 1/2: 0.25 / 0.75 = 1/3
    assert multiple_choice_probability(LN4, [LN2]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        multiple_choice_probability(LN2, [])


def test_multiple_choice_same_with_or_without_answer_in_options():
    losses = {"Paris": LN2, "Rome": LN4, "Oslo": LN4}

    def probability(options: list[str]) -> float:
        wrong = options_without_answer(" Paris", options)
        return multiple_choice_probability(losses["Paris"], [losses[o] for o in wrong])

    with_answer = probability(["Paris", "Rome", "Oslo"])
    without_answer = probability(["Rome", "Oslo"])
    assert with_answer == pytest.approx(without_answer) == pytest.approx(0.5)
    # counting the answer twice would give 0.5 / (0.5 + 0.5 + 0.25 + 0.25) = 1/3
    assert with_answer != pytest.approx(1 / 3)
    assert options_without_answer("Paris", ["Paris ", "Rome"]) == ["Rome"]


def test_truth_ratio_arithmetic_vs_geometric():
    # P(ŷ) = 1/2, perturbed P = 1/4 and 1/16
    # arithmetic: (1/4 + 1/16) / 2 / (1/2) = 0.15625 / 0.5 = 0.3125
    assert truth_ratio(LN2, [LN4, LN16]) == pytest.approx(0.3125)
    # geometric: sqrt(1/4 * 1/16) / (1/2) = 0.125 / 0.5 = 0.25
    assert truth_ratio(LN2, [LN4, LN16], mean="geometric") == pytest.approx(0.25)
    # equal perturbations: both means agree, 0.25 / 0.5 = 0.5
    assert truth_ratio(LN2, [LN4, LN4]) == pytest.approx(truth_ratio(LN2, [LN4, LN4], "geometric")) == 0.5
    with pytest.raises(ValueError):
        truth_ratio(LN2, [LN4], mean="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        truth_ratio(LN2, [])


def test_knowledge_vs_tofu_truth_ratio():
    # R = 0.3125: knowledge 1 - 0.3125 = 0.6875; TOFU min(0.3125, 3.2) = 0.3125
    assert knowledge_truth_ratio(0.3125) == pytest.approx(0.6875)
    assert tofu_forget_truth_ratio(0.3125) == pytest.approx(0.3125)
    # R = 2 (prefers wrong answers): knowledge max(0, -1) = 0; TOFU min(2, 0.5) = 0.5
    assert knowledge_truth_ratio(2.0) == 0.0
    assert tofu_forget_truth_ratio(2.0) == pytest.approx(0.5)
    assert tofu_forget_truth_ratio(0.0) == 0.0
    assert tofu_forget_truth_ratio(math.inf) == 0.0


def test_harmonic_mean():
    # 2 / (1/1 + 1/0.5) = 2 / 3
    assert harmonic_mean([1.0, 0.5]) == pytest.approx(2 / 3)
    assert harmonic_mean([0.3, 0.0, 0.9]) == 0.0
    with pytest.raises(ValueError):
        harmonic_mean([])
    with pytest.raises(ValueError):
        harmonic_mean([0.5, -0.1])


def test_forget_quality_gold_vs_itself_and_ks():
    gold = [0.1, 0.4, 0.4, 0.9]
    assert forget_quality(gold, gold) == (1.0, 0.0)
    model = [0.2, 0.3, 0.5, 0.6, 0.8, 1.5]
    p_value, ln_p = forget_quality(model, gold)
    assert p_value == ks_2samp(model, gold).pvalue
    assert ln_p == pytest.approx(math.log(p_value))


def test_forget_quality_floor_when_p_underflows():
    p_value, ln_p = forget_quality([0.0] * 1000, [1.0] * 1000)
    assert p_value == 0.0
    assert ln_p == LOG_P_FLOOR and math.isfinite(ln_p)


def test_score_record_plain_and_multiple_choice():
    base = {"question": "q", "answer": "the cat sat", "generation": "the cat", "loss": LN2}
    qa = score_record({**base, "kind": "qa", "loss_paraphrased": LN2, "losses_perturbed": [LN4, LN16]})
    assert qa["probability"] == pytest.approx(0.5)  # exp(-ln 2)
    assert qa["truth_ratio"] == pytest.approx(0.3125)  # as in the arithmetic test above
    assert qa["rougeL_recall"] == pytest.approx(2 / 3)  # "the cat" covers 2 of 3 reference tokens
    face = score_record(
        {**base, "kind": "face_name", "loss_paraphrased": LN2, "losses_perturbed": [LN4, LN4]}
    )
    assert face["probability"] == pytest.approx(0.5)  # 0.5 / (0.5 + 0.25 + 0.25)
    geometric = score_record(
        {**base, "kind": "qa", "loss_paraphrased": LN2, "losses_perturbed": [LN4, LN16]}, "geometric"
    )
    assert geometric["truth_ratio"] == pytest.approx(0.25)
    assert "probability" not in base  # a copy, not an in-place edit
    with pytest.raises(ValueError):
        score_record({**base, "kind": "essay", "loss_paraphrased": LN2, "losses_perturbed": [LN4]})


# ---------------------------------------------------------------- ItemResults


def _update(metric: ItemResults, index: list[int], perturbed: list[list[float]]) -> None:
    """Feed a batch whose loss columns encode the index, so the test can tell which copy survived."""
    idx = torch.tensor(index)
    metric.update(idx, idx.float(), idx.float() + 0.5, torch.tensor(perturbed), idx.float() / 10)


def test_item_results_sorts_and_deduplicates():
    metric = ItemResults()
    _update(metric, [2, 0, 1], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    # a padded duplicate of item 0 with different numbers: the first occurrence must win
    metric.update(
        torch.tensor([3, 0]),
        torch.tensor([3.0, 99.0]),
        torch.tensor([3.5, 99.0]),
        torch.tensor([[7.0, 8.0, 9.0], [99.0, 99.0, 99.0]]),
        torch.tensor([0.3, 0.99]),
    )
    out = metric.compute()
    assert out["index"].tolist() == [0, 1, 2, 3]
    assert out["loss"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert out["loss_paraphrased"].tolist() == [0.5, 1.5, 2.5, 3.5]
    assert out["rougeL_recall"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    # K differs between batches (2 then 3): padded to 3 with NaN
    assert out["losses_perturbed"].shape == (4, 3)
    assert torch.isnan(out["losses_perturbed"][:3, 2]).all()
    assert out["losses_perturbed"][0, :2].tolist() == [3.0, 4.0]
    assert out["losses_perturbed"][3].tolist() == [7.0, 8.0, 9.0]


def test_item_results_to_rows_drops_nan_padding():
    metric = ItemResults()
    _update(metric, [1, 0], [[1.0, float("nan")], [2.0, 3.0]])
    rows = metric.to_rows()
    assert rows == [
        {
            "index": 0,
            "loss": 0.0,
            "loss_paraphrased": 0.5,
            "losses_perturbed": [2.0, 3.0],
            "rougeL_recall": 0.0,
        },
        {
            "index": 1,
            "loss": 1.0,
            "loss_paraphrased": 1.5,
            "losses_perturbed": [1.0],
            "rougeL_recall": pytest.approx(0.1),
        },
    ]


def test_item_results_empty():
    with pytest.warns(UserWarning):
        out = ItemResults().compute()
    assert out["index"].numel() == 0 and out["losses_perturbed"].shape == (0, 0)


def test_item_results_syncs_through_torchmetrics_cat():
    """Simulate a 2-rank all-gather: rank 1 holds a padded duplicate of item 0 and a wider K."""
    rank1 = ItemResults()
    _update(rank1, [1, 0], [[5.0, 6.0, 7.0], [0.0, 0.0, 0.0]])
    from torchmetrics.utilities.data import dim_zero_cat

    rank1_states = iter([dim_zero_cat(getattr(rank1, name)) for name in rank1._reductions])

    def fake_gather(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
        return [tensor, next(rank1_states)]

    rank0 = ItemResults(dist_sync_fn=fake_gather, distributed_available_fn=lambda: True)
    _update(rank0, [2, 0], [[1.0, 2.0], [3.0, 4.0]])
    out = rank0.compute()
    assert out["index"].tolist() == [0, 1, 2]
    assert out["losses_perturbed"][0, :2].tolist() == [3.0, 4.0]  # rank 0's copy came first in the gather
    assert out["losses_perturbed"][1].tolist() == [5.0, 6.0, 7.0]


# ---------------------------------------------------------------- summary (paper mode)


def _record(
    set_name: str, kind: str, i: int, loss: float, para: float, perturbed: list[float], **extra
) -> dict:
    """A per-item record as the evaluation loop writes it (before scoring)."""
    record = {
        "id": f"{set_name}-{i}",
        "set": set_name,
        "modality": "text",
        "kind": kind,
        "question": "who?",
        "answer": "the cat sat",
        "generation": "the cat",
        "loss": loss,
        "loss_paraphrased": para,
        "losses_perturbed": perturbed,
    }
    return {**record, **extra}


def _records(scale: float = 1.0) -> dict[str, list[dict]]:
    """Two items per set; `scale` multiplies forget-set paraphrase losses to make a different model."""
    out = {}
    for name, kind in [
        ("forget_qa", "qa"),
        ("forget_face_name", "face_name"),
        ("retain_qa", "qa"),
        ("retain_caption", "caption"),
        ("real_faces", "face_name"),
        ("real_world", "multiple_choice"),
    ]:
        s = scale if name.startswith("forget") else 1.0
        out[name] = [
            _record(name, kind, 0, LN2, LN2 * s, [LN4, LN16]),
            _record(name, kind, 1, LN4, LN4 * s, [LN2, LN8], generation="the cat sat"),
        ]
    return out


def test_set_group():
    assert set_group("forget_qa") == "forget"
    assert set_group("retain_face_name") == "retain"
    assert set_group("real_faces") == set_group("real_world") == set_group("world_facts") == "real"
    assert set_group("real_authors") == "real"
    assert set_group("holdout_qa") == "holdout"  # scored, never in an aggregate
    with pytest.raises(ValueError, match="holdout"):
        set_group("holdout")


def test_summarize_set_hand_computed():
    records = [
        _record("retain_qa", "qa", 0, LN2, LN2, [LN4, LN16]),  # P 1/2, R 0.3125, ROUGE 2/3
        _record("retain_qa", "qa", 1, LN4, LN4, [LN2, LN8], generation="the cat sat"),  # P 1/4, ROUGE 1
    ]
    # item 1: R = ((1/2 + 1/8) / 2) / (1/4) = 0.3125 / 0.25 = 1.25
    s = summarize_set(records)
    assert s["n"] == 2
    assert s["probability"] == pytest.approx((0.5 + 0.25) / 2)
    assert s["rougeL_recall"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert s["truth_ratio"] == pytest.approx((0.6875 + 0.0) / 2)  # max(0, 1-R)
    assert s["truth_ratio_tofu"] == pytest.approx((0.3125 + 0.8) / 2)  # min(R, 1/R), 1/1.25 = 0.8


def test_summarize_set_uses_stored_scores():
    record = _record(
        "retain_qa", "qa", 0, LN2, LN2, [LN4], rougeL_recall=0.1, probability=0.2, truth_ratio=0.5
    )
    s = summarize_set([record])
    assert (s["rougeL_recall"], s["probability"], s["truth_ratio"]) == (0.1, 0.2, 0.5)


def test_summarize_recomputes_from_records():
    model, gold = _records(scale=0.5), _records()
    summary = summarize(model, gold)
    scored = {name: [score_record(r) for r in records] for name, records in model.items()}

    def set_components(name: str) -> list[float]:
        items = scored[name]
        return [
            float(np.mean([r["rougeL_recall"] for r in items])),
            float(np.mean([r["probability"] for r in items])),
            float(np.mean([max(0.0, 1 - r["truth_ratio"]) for r in items])),
        ]

    def hmean(values: list[float]) -> float:
        return len(values) / sum(1 / v for v in values) if all(values) else 0.0

    for name in model:
        rouge, prob, tr = set_components(name)
        assert summary[f"{name}/rougeL_recall"] == pytest.approx(rouge)
        assert summary[f"{name}/probability"] == pytest.approx(prob)
        assert summary[f"{name}/truth_ratio"] == pytest.approx(tr)
        assert summary[f"{name}/n"] == 2
    groups = {"forget": ["forget_qa", "forget_face_name"], "retain": ["retain_qa", "retain_caption"]}
    groups["real"] = ["real_faces", "real_world"]
    for group, names in groups.items():
        assert summary[f"{group}_metric"] == pytest.approx(
            hmean([v for n in names for v in set_components(n)])
        )
    utility = [v for n in groups["retain"] + groups["real"] for v in set_components(n)]
    assert summary["model_utility"] == pytest.approx(hmean(utility))
    model_r = [r["truth_ratio"] for n in ("forget_face_name", "forget_qa") for r in scored[n]]
    gold_r = [score_record(r)["truth_ratio"] for n in ("forget_face_name", "forget_qa") for r in gold[n]]
    assert summary["forget_quality"] == ks_2samp(model_r, gold_r).pvalue
    assert summary["log_forget_quality"] == pytest.approx(math.log(summary["forget_quality"]))
    # scoring the records first (as the JSONL holds them) gives exactly the same summary
    assert summarize(scored, gold) == summary


def test_summarize_gold_vs_itself_and_missing_parts():
    gold = _records()
    summary = summarize(gold, gold)
    assert summary["forget_quality"] == 1.0 and summary["log_forget_quality"] == 0.0
    only_retain = {"retain_qa": gold["retain_qa"]}
    partial = summarize(only_retain)
    assert partial["forget_metric"] is None and partial["real_metric"] is None
    assert partial["forget_quality"] is None and partial["retain_metric"] is not None
    assert summarize(only_retain, gold)["forget_quality"] is None  # no forget set in common


def test_summarize_empty_set_raises():
    with pytest.raises(ValueError, match="forget_qa"):
        summarize({"forget_qa": [], "retain_qa": _records()["retain_qa"]})


def test_leaderboard_excludes_collapsed_and_ranks_by_forget():
    rows = [
        {"method": "ga", "retain_metric": 0.0, "forget_metric": 0.0},
        {"method": "idk", "retain_metric": 0.50, "forget_metric": 0.33},
        {"method": "dpo", "retain_metric": 0.48, "forget_metric": 0.22},
        {"method": "npo", "retain_metric": 0.39, "forget_metric": 0.11},  # 0.39 < 0.8 * 0.5 = 0.40
        {"method": "scrub", "retain_metric": 0.52, "forget_metric": 0.36},
        {"method": "llmu", "retain_metric": 0.51, "forget_metric": 0.25},
    ]
    board = leaderboard(rows, original_retain=0.5)
    assert [r["method"] for r in board] == ["dpo", "llmu", "idk", "scrub", "ga", "npo"]
    assert [r["rank"] for r in board] == [1, 2, 3, 4, None, None]
    assert [r["top"] for r in board] == [True, True, True, False, False, False]
    assert [r["collapsed"] for r in board] == [False] * 4 + [True] * 2
    # a looser rule keeps npo, which then ranks first
    assert leaderboard(rows, original_retain=0.5, collapse_ratio=0.5)[0]["method"] == "npo"


def test_leaderboard_ranks_each_modality_separately():
    rows = [
        {"method": "a", "modality": "text", "retain_metric": 0.5, "forget_metric": 0.3},
        {"method": "b", "modality": "visual", "retain_metric": 0.5, "forget_metric": 0.2},
        {"method": "c", "modality": "text", "retain_metric": 0.5, "forget_metric": 0.1},
    ]
    board = leaderboard(rows, original_retain=0.5)
    assert [(r["method"], r["rank"]) for r in board] == [("c", 1), ("a", 2), ("b", 1)]


def _gloo_worker(rank: int, port: int, queue) -> None:
    """One rank of a real 2-process gloo group; rank 1 holds a DistributedSampler-style duplicate of item 0."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        metric = ItemResults()
        if rank == 0:
            _update(metric, [0, 2], [[1.0, 2.0], [3.0, 4.0]])
        else:
            _update(metric, [1, 0], [[5.0, 6.0, 7.0], [1.0, 2.0, float("nan")]])
        queue.put((rank, metric.to_rows()))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_item_results_real_gloo_sync():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_gloo_worker, args=(rank, port, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert results[0] == results[1]
    assert [r["index"] for r in results[0]] == [0, 1, 2]
    assert [r["losses_perturbed"] for r in results[0]] == [[1.0, 2.0], [5.0, 6.0, 7.0], [3.0, 4.0]]


def test_forget_quality_per_forget_set_is_scipy_ks_on_that_set():
    model, gold = _records(scale=2.0), _records()
    summary = summarize(model, gold)
    for name in ("forget_qa", "forget_face_name"):
        expected = ks_2samp(raw_truth_ratios(model[name]), raw_truth_ratios(gold[name])).pvalue
        assert summary[f"forget_quality/{name}"] == pytest.approx(expected)
        assert summary[f"log_forget_quality/{name}"] == pytest.approx(math.log(expected))
    assert "forget_quality/retain_qa" not in summary
