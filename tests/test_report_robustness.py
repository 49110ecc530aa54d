"""Robustness in the report and its document (issue 14), on hand-written summary.json + robustness.json."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from statistics import stdev

import pytest

from clear_lightning.report import CSV_COLUMNS, build_report, find_runs
from clear_lightning.report.markdown import ROBUST_CSV_COLUMNS
from clear_lightning.report.robustness import residual_figure, robust_rows, robustness_figure
from clear_lightning.robustness_doc import SWEEP_COMMAND, findings, main, only_hides, stays_close

# (method, seed) -> residual forget metric (unlearned − gold) per attack, worst variant; "none" = no attack.
# npo forgets like gold without attack but relearning brings it back (it only hides); rmu stays close to gold.
RESIDUAL = {
    ("npo", 0): {"none": 0.01, "relearn": 0.30, "quantize": 0.12},
    ("npo", 1): {"none": 0.03, "relearn": 0.20, "quantize": 0.16},
    ("rmu", 0): {"none": 0.02, "relearn": 0.04, "quantize": -0.01},
    ("rmu", 1): {"none": -0.02, "relearn": 0.03, "quantize": 0.05},
}
HALF = {"npo": 0.1, "rmu": 0.05}  # half-width of each run's person-level interval of the residual
GAP = {("npo", 0): 0.9, ("npo", 1): 0.95, ("rmu", 0): 0.5, ("rmu", 1): 0.6}
ROBUST_GAP = {("npo", 0): 0.2, ("npo", 1): 0.4, ("rmu", 0): 0.7, ("rmu", 1): 0.8}
LEAKAGE = {("npo", 0): 0.10, ("npo", 1): 0.20, ("rmu", 0): 0.0, ("rmu", 1): 0.02}
AUC_UNLEARNED = {("npo", 0): 0.66, ("npo", 1): 0.72, ("rmu", 0): 0.6, ("rmu", 1): 0.612}
GOLD_FORGET, ORIGINAL_FORGET = 0.10, 0.60
QUANTIZE_OTHER = -0.05  # the 8bit variant's residual: 4bit is always the worst


def _variant(residual: float, half: float) -> dict:
    return {
        "scores": {
            "unlearned": {"forget_metric": 0.0, "forget_mean": GOLD_FORGET + residual},
            "gold": {"forget_metric": 0.0, "forget_mean": GOLD_FORGET},
            "original": {"forget_metric": 0.3, "forget_mean": ORIGINAL_FORGET},
        },
        "residual": {"mean": residual, "forget_metric": 0.0, "retain_metric": 0.0},
        "gap_closed": 0.5,
        "intervals": {"residual/mean": [residual - half, residual + half], "gap_closed": [0.3, 0.7]},
    }


def _entry(kind: str, variants: dict[str, float], half: float) -> dict:
    worst = max(variants, key=variants.get)
    built = {v: _variant(r, half) for v, r in variants.items()}
    return {
        "attack": kind, "kind": kind, "description": f"the {kind} attack", "variants": built, "worst": worst,
        "residual_forget": variants[worst], "interval": built[worst]["intervals"]["residual/mean"],
        "gap_closed": 0.5, "seconds": {"unlearned": 1.0},
    }  # fmt: skip


def _robustness(method: str, seed: int) -> dict:
    res, half = RESIDUAL[(method, seed)], HALF[method]
    attacks = {
        "relearn": _entry("relearn", {"default": res["relearn"]}, half),
        "quantize": _entry("quantize", {"8bit": QUANTIZE_OTHER, "4bit": res["quantize"]}, half),
        "mia": {
            "attack": "mia", "kind": "mia", "description": "membership inference", "residual_forget": None,
            "scores": {"loss": {"auc": {"unlearned": AUC_UNLEARNED[(method, seed)], "gold": 0.6,
                                        "original": 0.9},
                                "privacy_leakage": LEAKAGE[(method, seed)]}},
            "seconds": {},
        },
    }  # fmt: skip
    worst = max(("relearn", "quantize"), key=lambda a: res[a])
    return {
        "method": method, "split": "forget10", "modality": "both", "seed": seed,
        "no_attack": _entry("none", {"none": res["none"]}, half), "attacks": attacks,
        "robust_forget": {"value": res[worst], "attack": worst, "variant": attacks[worst]["worst"]},
        "robust_gap_closed": {"value": ROBUST_GAP[(method, seed)], "attack": "relearn", "variant": "default"},
    }  # fmt: skip


def _summary(method: str, seed: int, modality: str, robust: bool) -> dict:
    summary = {
        "method": method, "label": method, "model": "tiny_llava", "split": "forget10", "modality": modality,
        "metric_mode": "paper", "forget_metric": 0.2, "retain_metric": 0.7, "real_metric": 0.6,
        "gap_closed": GAP[(method, seed)], "provenance": {"seed": seed},
        "config": {"seed": seed, "method": {"l1_lambda": 0.0}},
        "bootstrap": {"n_boot": 200, "seed": 0, "level": 0.95, "n_used": 200},
    }  # fmt: skip
    if robust:
        stored = _robustness(method, seed)
        worst = stored["robust_forget"]
        summary.update(
            robust_forget=worst["value"],
            robust_forget_attack=worst["attack"]
            + ("" if worst["variant"] == "default" else f"/{worst['variant']}"),
            robust_gap_closed=ROBUST_GAP[(method, seed)],
            **{f"residual/{a}": v for a, v in RESIDUAL[(method, seed)].items()},
            **{f"privacy_leakage/{s}": None for s in ("zlib", "min_k", "min_k_plus_plus")},
            **{"privacy_leakage/loss": LEAKAGE[(method, seed)]},
        )
    return summary


def _write_sweep(root: Path, robust_modalities: tuple[str, ...] = ("both",)) -> Path:
    """2 methods × 2 seeds in modality "both" (attacked unless told otherwise) and "text" (never attacked)."""
    for modality in ("both", "text"):
        for method, seed in RESIDUAL:
            d = root / "tiny_llava" / "forget10" / modality / method / f"seed{seed}"
            d.mkdir(parents=True)
            robust = modality in robust_modalities
            (d / "summary.json").write_text(json.dumps(_summary(method, seed, modality, robust)))
            (d / "stage.json").write_text(json.dumps({"stage": "unlearn"}))
            if robust:
                (d / "robustness.json").write_text(json.dumps(_robustness(method, seed)))
    return root


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return _write_sweep(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="module")
def rows(sweep):
    return robust_rows(find_runs(sweep))


def _row(rows, method):
    return next(r for r in rows if r["method"] == method)


def test_robust_rows_means_and_stds_by_hand(rows):
    assert [(r["method"], r["modality"], r["n_seeds"]) for r in rows] == [
        ("npo", "both", 2),
        ("rmu", "both", 2),
    ]
    npo, rmu = _row(rows, "npo"), _row(rows, "rmu")
    assert npo["attacks"] == ["none", "relearn", "quantize"]
    assert npo["robust_forget"] == pytest.approx(0.25) and npo["robust_forget_std"] == pytest.approx(
        stdev([0.3, 0.2])
    )
    assert (npo["robust_forget_attack"], npo["robust_forget_attack_count"]) == ("relearn", 2)
    assert rmu["robust_forget"] == pytest.approx(0.045)  # seed 0: relearn 0.04, seed 1: quantize/4bit 0.05
    assert rmu["robust_forget_attack_count"] == 1 and rmu["robust_forget_attack_of"] == 2
    assert npo["residual/none"] == pytest.approx(0.02) and npo["residual/none_std"] == pytest.approx(
        stdev([0.01, 0.03])
    )
    assert npo["residual/quantize"] == pytest.approx(0.14) and npo["residual/quantize_variant"] == "4bit"
    assert rmu["residual/quantize"] == pytest.approx(0.02) and rmu["residual/quantize_std"] == pytest.approx(
        stdev([-0.01, 0.05])
    )
    # mean of the seeds' lower bounds and of their upper bounds: relearn [0.2, 0.4] and [0.1, 0.3]
    assert npo["residual/relearn_interval"] == pytest.approx([0.15, 0.35])
    assert npo["residual/relearn_n_intervals"] == 2
    assert npo["robust_gap_closed"] == pytest.approx(0.3) and rmu["robust_gap_closed"] == pytest.approx(0.75)
    assert npo["gap_closed"] == pytest.approx(0.925)
    assert npo["privacy_leakage/loss"] == pytest.approx(0.15) and npo["privacy_leakage/zlib"] is None
    assert npo["auc/loss/unlearned"] == pytest.approx(0.69) and npo["auc/loss/original"] == pytest.approx(0.9)
    assert npo["ci_level"] == 0.95


def _csv_header(path: Path) -> list[str]:
    with open(path) as f:
        return next(csv.reader(f))


def test_leaderboard_has_robust_columns_only_where_attacked(sweep, tmp_path):
    build_report(sweep, tmp_path / "out")
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    both, text = md.split("## both")[1].split("## text")
    head = "| Robust forget (worst residual) ↓ | worst attack |"
    assert head in both and head not in text
    npo = next(line for line in both.splitlines() if "npo** |" in line)
    assert npo.endswith(f"| 0.250 ± {stdev([0.3, 0.2]):.3f} | relearn (2 of 2) |")
    rmu = next(line for line in both.splitlines() if "rmu** |" in line)
    assert rmu.endswith("| relearn (1 of 2) |")
    assert "Robust forget (worst residual): per run" in both and "Robust forget" not in text
    assert _csv_header(tmp_path / "out" / "leaderboard.csv") == [*CSV_COLUMNS, *ROBUST_CSV_COLUMNS]


def test_no_robustness_leaves_the_report_as_it_was(tmp_path):
    runs = _write_sweep(tmp_path / "sweep", robust_modalities=())
    report = build_report(runs, tmp_path / "out")
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "Robust" not in md and "Per-run figures" not in md and "residual" not in md
    assert _csv_header(tmp_path / "out" / "leaderboard.csv") == list(CSV_COLUMNS)
    assert not list((tmp_path / "out").glob("r*.png"))
    assert not any("robust" in p.name or "residual" in p.name for p in report.files)


def _png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_report_writes_the_sweep_and_per_run_figures(sweep, tmp_path):
    report = build_report(sweep, tmp_path / "out")
    out = tmp_path / "out"
    runs = sorted(p.name for p in out.glob("robustness_*.png"))
    assert runs == [
        f"robustness_tiny_llava_forget10_both_{m}_seed{s}.png" for m in ("npo", "rmu") for s in (0, 1)
    ]
    for name in [*runs, "residual.png"]:
        _png(out / name)
        assert out / name in report.files
    md = (out / "leaderboard.md").read_text()
    assert "![residual](residual.png)" in md and f"- [{runs[0][:-4]}]({runs[0]})" in md
    assert not list(sweep.rglob("*.png"))  # run directories are not written to


def test_figures_directly(rows, sweep, tmp_path):
    stored = json.loads(next(sweep.rglob("robustness.json")).read_text())
    _png(robustness_figure(stored, tmp_path / "run.png", "one run"))
    _png(residual_figure(rows, tmp_path / "sweep.png", "a sweep"))
    with pytest.raises(ValueError):
        robustness_figure({"attacks": {}}, tmp_path / "none.png", "nothing")


def test_findings_name_the_method_that_only_hides(rows):
    npo, rmu = _row(rows, "npo"), _row(rows, "rmu")
    # relearn 0.25 [0.15, 0.35] and quantize 0.14 [0.04, 0.24]: both ≥ 0.1 with the interval above 0
    assert [a for a, _, _ in only_hides(npo)] == ["relearn", "quantize"]
    assert only_hides(rmu) == [] and stays_close(rmu) and not stays_close(npo)
    never_forgot = {**npo, "residual/none": 0.3, "gap_closed": 0.2}  # not like gold without attack either
    assert only_hides(never_forgot) == []
    text = "\n".join(findings(rows))
    hide = next(line for line in text.splitlines() if "Only hide" in line)
    assert "**npo**" in hide and "rmu" not in hide and "relearn +0.250 [+0.150, +0.350]" in hide
    close = next(line for line in text.splitlines() if "Stay close" in line)
    assert close.endswith(": rmu.")
    # relearn: mean of (0.25, 0.035) = 0.1425 (0.14250000000000002) > quantize: mean of (0.14, 0.02) = 0.08
    assert "brings most back on average: relearn** — mean residual +0.143 over 2 methods" in text


def test_a_rise_without_interval_is_not_called_hiding(rows):
    npo = _row(rows, "npo")
    no_interval = {**npo, "residual/relearn_interval": None, "residual/quantize_interval": None}
    assert only_hides(no_interval) == []
    text = "\n".join(findings([no_interval, _row(rows, "rmu")]))
    assert "interval lies above 0): none." in text
    assert "no interval to check it against 0: npo (relearn +0.250 (no interval)" in text


def test_document_from_the_command(sweep, tmp_path):
    out = tmp_path / "docs" / "robustness-embedded.md"
    assert main([str(sweep), "--out", str(out)]) == 0
    doc = out.read_text()
    assert f"Generated by `python -m clear_lightning.robustness_doc {sweep} --out {out}`" in doc
    assert f"from the sweep `{SWEEP_COMMAND}`" in doc
    assert "- **Only hide the knowledge**" in doc and "**npo** (relearn +0.250" in doc
    assert "### relearn" in doc and "the relearn attack" in doc and "### quantize" in doc
    assert f"| npo | 0.250 ± {stdev([0.3, 0.2]):.3f} | [+0.150, +0.350] | default | 2 |" in doc
    assert "| npo | loss | 0.690 | 0.600 | 0.900 | 0.150 ± 0.071 |" in doc
    assert "![residual knowledge](robustness-embedded/residual.png)" in doc and "## Limits" in doc
    _png(tmp_path / "docs" / "robustness-embedded" / "residual.png")
    custom = "python -m clear_lightning -m --config-name robustness seed=0,1"
    assert main([str(sweep), "--out", str(out), "--sweep-command", custom]) == 0
    assert f"--sweep-command '{custom}'`" in out.read_text()


def test_document_without_robustness_is_an_error(tmp_path, capsys):
    runs = _write_sweep(tmp_path / "sweep", robust_modalities=())
    assert main([str(runs), "--out", str(tmp_path / "doc.md")]) == 2
    assert "no unlearning run with robustness results" in capsys.readouterr().err
    assert not (tmp_path / "doc.md").exists()


def test_robustness_imports_only_downwards_and_no_torch():
    import ast

    import clear_lightning.report as package

    tree = ast.parse((Path(package.__file__).parent / "robustness.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
    assert imported <= {"runs", "tables", "markdown", "plots"}, imported
    code = "import sys, clear_lightning.robustness_doc; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
