"""The report command on a hand-written run tree: aggregates over seeds, the benchmark.md §6 collapse rule, files."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from statistics import stdev

import pytest

from clear_lightning.errors import ClearConfigError
from clear_lightning.report import CSV_COLUMNS, build_report, main

# Hand-written summaries: (modality, method, l1_lambda) -> per seed (real, retain, forget, forget quality).
# Original retain metric = 0.8 (records below), so with ratio 0.8 a row collapses when its mean Retain < 0.64.
RUNS = {
    ("both", "gd", 0.0): [(0.60, 0.70, 0.30, 0.50), (0.62, 0.74, 0.20, 0.30)],
    ("both", "gd", 0.01): [(0.58, 0.66, 0.10, 0.20), (0.60, 0.70, 0.14, 0.10)],
    ("both", "ga", 0.0): [(0.20, 0.30, 0.00, 0.01), (0.30, 0.50, 0.02, 0.03)],  # collapsed: mean Retain 0.40
    ("text", "gd", 0.0): [(0.60, 0.75, 0.40, 0.40), (0.64, 0.77, 0.50, 0.20)],
    ("text", "ga", 0.0): [(0.50, 0.70, 0.25, 0.05), (0.52, 0.72, 0.35, 0.07)],
}
# Diagnostics some runs carry (modality, label, seed) -> summary keys: a degenerate Forget metric on a ranked row,
# bootstrap intervals (both: separable, text: overlapping), gap closed.
ZERO_TR = "forget_qa/truth_ratio = 0: the harmonic mean is 0 whatever the other components are"
FLAGS = {f"{m}_degenerate": False for m in ("real_metric", "retain_metric", "forget_metric", "model_utility")}
EXTRA = {
    ("both", "gd+l1", 0): {
        **FLAGS,
        "forget_metric_degenerate": True,
        "degenerate_reasons": [f"forget_metric: {ZERO_TR}"],
    },
    ("both", "gd+l1", 1): {**FLAGS, "degenerate_reasons": []},
}
HALF_WIDTH = {("both", "gd+l1"): 0.05, ("both", "gd"): 0.05, ("text", "ga"): 0.1, ("text", "gd"): 0.1}
GAP_CLOSED = {("both", "gd"): (0.8, 1.0), ("both", "gd+l1"): (1.1, 1.3), ("text", "ga"): (0.5, 0.7)}
GOLD_R = [0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 0.3]
ORIGINAL_R = [0.01, 0.02, 0.05, 0.03, 0.1, 0.02, 0.04, 0.08]


def _records(name: str, ratios: list[float], rouge: float = 0.8, prob: float = 0.8) -> list[dict]:
    return [
        {
            "id": f"{name}-{i}",
            "set": name,
            "truth_ratio": r,
            "rougeL_recall": rouge,
            "probability": prob,
            "loss": 1.0,
        }
        for i, r in enumerate(ratios)
    ]


def _write_eval(directory: Path, forget_r: list[float]) -> None:
    """Forget R as given; retain and real items all 0.8 / 0.8 / R=0.2, so their metrics are exactly 0.8."""
    (directory / "eval").mkdir(parents=True, exist_ok=True)
    sets = {
        "forget_qa": _records("forget_qa", forget_r, 0.5, 0.5),
        "retain_qa": _records("retain_qa", [0.2] * 4),
        "real_faces": _records("real_faces", [0.2] * 4),
    }
    for name, records in sets.items():
        (directory / "eval" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _write_tree(root: Path, gold: Path | None = None) -> Path:
    artifacts = root / "artifacts" / "eval"
    gold = gold or artifacts / "gold"
    _write_eval(artifacts / "gold", GOLD_R)
    (artifacts / "gold" / "meta.json").write_text(json.dumps({"label": "gold", "split": "forget10"}))
    _write_eval(artifacts / "original", ORIGINAL_R)
    runs = root / "runs"
    for (modality, method, l1), seeds in RUNS.items():
        for seed, (real, retain, forget, fq) in enumerate(seeds):
            name = method + ("_l1" if l1 else "")
            d = runs / "multirun" / "t0" / "tiny_llava" / "forget10" / modality / name / f"seed{seed}"
            _write_eval(d, [r * (1 + forget) for r in GOLD_R])
            summary = {
                "real_metric": real, "retain_metric": retain, "forget_metric": forget,
                "forget_quality": fq, "log_forget_quality": math.log(fq), "model_utility": retain,
                "label": method, "method": method, "model": "tiny_llava", "split": "forget10",
                "modality": modality, "metric_mode": "paper", "gold": str(gold),
                "provenance": {"seed": seed}, "config": {"seed": seed, "method": {"l1_lambda": l1}},
            }  # fmt: skip
            label = method + ("+l1" if l1 else "")
            summary.update(EXTRA.get((modality, label, seed), {}))
            if (modality, label) in GAP_CLOSED:
                summary["gap_closed"] = GAP_CLOSED[(modality, label)][seed]
            if (modality, label) in HALF_WIDTH:
                h = HALF_WIDTH[(modality, label)]
                summary["intervals"] = {
                    "forget_metric": [forget - h, forget + h],
                    "retain_metric": [retain - h, retain + h],
                }
                summary["bootstrap"] = {"n_boot": 200, "seed": 0, "level": 0.95, "n_used": 200}
            (d / "summary.json").write_text(json.dumps(summary))
            stage = {"stage": "unlearn", "original_eval": str(artifacts / "original"), "gold_eval": str(gold)}
            (d / "stage.json").write_text(json.dumps(stage))
    other = runs / "tiny_llava" / "forget10" / "both" / "gold" / "t1"  # a gold-stage run: not a method
    other.mkdir(parents=True)
    (other / "summary.json").write_text(
        json.dumps({"method": "gold", "retain_metric": 0.9, "forget_metric": 0.0})
    )
    (other / "stage.json").write_text(json.dumps({"stage": "gold"}))
    return runs


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    runs = _write_tree(root)
    return build_report(runs, root / "out"), root / "out"


def _csv(out: Path) -> list[dict]:
    with open(out / "leaderboard.csv") as f:
        return list(csv.DictReader(f))


def _row(rows: list[dict], modality: str, label: str) -> dict:
    return next(r for r in rows if r["modality"] == modality and r["label"] == label)


def test_mean_and_std_over_seeds(report):
    _, out = report
    rows = _csv(out)
    for (modality, method, l1), seeds in RUNS.items():
        row = _row(rows, modality, method + ("+l1" if l1 else ""))
        assert row["n_seeds"] == "2" and row["seeds"] == "0 1"
        for i, metric in enumerate(("real_metric", "retain_metric", "forget_metric", "forget_quality")):
            values = [s[i] for s in seeds]
            assert float(row[metric]) == pytest.approx(sum(values) / 2)
            assert float(row[f"{metric}_std"]) == pytest.approx(stdev(values))
    md = (out / "leaderboard.md").read_text()
    assert "0.720 ± 0.028" in md  # gd, both: Retain (0.70 + 0.74) / 2, sample std 0.04 / √2


def test_collapsed_rows_are_marked_and_not_ranked(report):
    result, out = report
    rows = _csv(out)
    ga = _row(rows, "both", "ga")
    assert ga["collapsed"] == "True" and ga["rank"] == "" and ga["top"] == "False"
    assert float(ga["collapse_threshold"]) == pytest.approx(0.8 * 0.8)
    assert all(r["collapsed"] == "False" for r in rows if r["kind"] == "run" and r is not ga)
    both = next(t for t in result.tables if t.key[2] == "both")
    assert both.original_retain == pytest.approx(0.8)  # from the original's records via summarize
    md_row = next(line for line in (out / "leaderboard.md").read_text().splitlines() if "| ga |" in line)
    assert md_row.startswith("| — |") and md_row.endswith("| yes |")


def test_ranking_by_forget_metric_per_modality(report):
    _, out = report
    rows = _csv(out)
    ranks = {(r["modality"], r["label"]): r["rank"] for r in rows if r["kind"] == "run"}
    # both: gd+l1 (forget 0.12) before gd (0.25); ga (0.01) is lowest but collapsed. text: ga (0.30) before gd (0.45)
    assert ranks == {("both", "gd+l1"): "1", ("both", "gd"): "2", ("both", "ga"): "", ("text", "ga"): "1",
                     ("text", "gd"): "2"}  # fmt: skip
    assert all(r["top"] == "True" for r in rows if r["rank"])


def test_one_table_per_modality_with_reference_rows(report):
    result, out = report
    md = (out / "leaderboard.md").read_text()
    assert [t.key[2] for t in result.tables] == ["both", "text"]
    assert md.count("## both — tiny_llava, forget10") == 1 and md.count("## text — tiny_llava, forget10") == 1
    head = "| rank | method | Real ↑ | Retain ↑ | Forget ↓ | FQ ↑ | log FQ ↑ | gap closed (1 = gold) | n seeds | collapsed |"
    assert md.count(head) == 2
    assert "Collapse rule" in md and "0.8 × the original" in md and "python -m clear_lightning.report" in md
    assert md.count("| ref | gold (reference) |") == 2 and md.count("| ref | original (reference) |") == 2
    gold = next(r for r in _csv(out) if r["kind"] == "gold")
    assert float(gold["forget_quality"]) == pytest.approx(1.0) and float(
        gold["retain_metric"]
    ) == pytest.approx(0.8)


def test_csv_columns_and_rows(report):
    _, out = report
    with open(out / "leaderboard.csv") as f:
        header = next(csv.reader(f))
    assert tuple(header) == CSV_COLUMNS
    assert {"method", "real_metric", "retain_metric", "forget_metric", "forget_quality", "log_forget_quality",
            "n_seeds", "collapsed", "rank"} <= set(header)  # fmt: skip
    kinds = [r["kind"] for r in _csv(out)]
    assert kinds.count("run") == len(RUNS) and kinds.count("gold") == 2 and kinds.count("original") == 2


def test_plots_written_and_non_trivial(report):
    result, out = report
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "tradeoff_tiny_llava_forget10.png",
        "truth_ratio_tiny_llava_forget10_both.png",
        "truth_ratio_tiny_llava_forget10_text.png",
    ]
    for name in pngs:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
        assert f"]({name})" in (out / "leaderboard.md").read_text()
    assert result.warnings == []


def test_missing_gold_skips_plot_but_builds_table(tmp_path, capsys):
    runs = _write_tree(tmp_path, gold=tmp_path / "nowhere")
    result = build_report(runs, tmp_path / "out")
    assert not list((tmp_path / "out").glob("truth_ratio_*.png"))
    assert (tmp_path / "out" / "tradeoff_tiny_llava_forget10.png").exists()
    assert any("nowhere" in w and "truth-ratio panels of 10 run(s)" in w for w in result.warnings)
    assert "warning:" in capsys.readouterr().err
    assert _row(_csv(tmp_path / "out"), "both", "gd+l1")["rank"] == "1"


def test_empty_directory_error(tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ClearConfigError, match="no unlearning run summaries") as err:
        build_report(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(err.value) and "python -m clear_lightning" in err.value.fix
    assert main([str(tmp_path / "empty")]) == 2
    assert "error: no unlearning run summaries" in capsys.readouterr().err


def test_cli_runs_without_torch(tmp_path):
    runs = _write_tree(tmp_path)
    code = (
        "import sys; from clear_lightning.report import main; "
        f"rc = main([{str(runs)!r}, '--out', {str(tmp_path / 'o')!r}, '--top', '1']); "
        "assert 'torch' not in sys.modules, 'the report imported torch'; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "leaderboard.md" in done.stdout
    md = (tmp_path / "o" / "leaderboard.md").read_text()
    assert (
        md.count("| 1 ★ |") == 1 and md.count("| 1 † ★ |") == 1
    )  # --top 1: one per modality (both: degenerate)


def _md_row(md: str, label: str, section: str) -> str:
    part = md.split(f"## {section}")[1].split("## ")[0]
    return next(line for line in part.splitlines() if line.startswith("|") and f" {label} |" in line)


def test_degenerate_forget_metric_is_marked_and_its_rank_flagged(report):
    _, out = report
    md = (out / "leaderboard.md").read_text()
    row = _md_row(md, "**gd+l1**", "both")
    assert row.startswith("| 1 † ★ |")  # ranked, but the rank says it stands on a degenerate Forget metric
    assert "0.120 ± 0.028 [±0.050] †" in row  # Forget: mean ± std [± mean bootstrap half-width] †
    assert "0.680 ± 0.028 [±0.050] |" in row  # Retain: not degenerate
    assert "  - gd+l1: forget_qa/truth_ratio = 0 (1 of 2 seeds) — Forget\n" in md
    assert "Ranked on a degenerate Forget metric †: gd+l1 (rank 1)" in md
    assert "†" not in _md_row(md, "**gd**", "both").split("|")[1]
    csv_row = _row(_csv(out), "both", "gd+l1")
    assert csv_row["forget_metric_degenerate"] == "True" and csv_row["retain_metric_degenerate"] == "False"
    assert _row(_csv(out), "both", "gd")["forget_metric_degenerate"] == ""  # not recorded: unknown, not False


def test_adjacent_methods_with_overlapping_intervals_are_not_separable(report):
    _, out = report
    md = (out / "leaderboard.md").read_text()
    # text: ga 0.30 ± 0.10 and gd 0.45 ± 0.10 overlap; both: gd+l1 0.12 ± 0.05 and gd 0.25 ± 0.05 do not
    assert "≈ not separable at 95 %: ga (rank 1) and gd (rank 2)" in md
    assert _md_row(md, "**gd**", "text").startswith("| 2 ≈ ★ |")
    assert _md_row(md, "**gd**", "both").startswith("| 2 ★ |")
    assert md.count("≈ not separable at") == 1
    rows = _csv(out)
    assert _row(rows, "text", "gd")["separable_from_above"] == "False"
    assert _row(rows, "both", "gd")["separable_from_above"] == "True"
    assert float(_row(rows, "text", "ga")["forget_metric_ci"]) == pytest.approx(0.1)


def test_gap_closed_column_and_reference_rows(report):
    _, out = report
    md = (out / "leaderboard.md").read_text()
    assert "| 0.90 ± 0.14 | 2 | no |" in _md_row(md, "**gd**", "both")  # gap closed: mean (0.8, 1.0) ± std
    assert "| — | 2 | no |" in _md_row(md, "**gd**", "text")  # no gap closed in its summaries
    rows = _csv(out)
    gold = next(r for r in rows if r["kind"] == "gold")
    original = next(r for r in rows if r["kind"] == "original")
    assert float(gold["gap_closed"]) == pytest.approx(1.0) and float(original["gap_closed"]) == pytest.approx(
        0.0
    )


def test_rank_ties_are_said(tmp_path):
    runs = _write_tree(tmp_path)
    for summary_path in runs.rglob("summary.json"):
        summary = json.loads(summary_path.read_text())
        if summary.get("modality") == "text":
            summary["forget_metric"] = 0.0  # ga and gd tie at 0
            summary_path.write_text(json.dumps(summary))
    build_report(runs, tmp_path / "out")
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "= rank tie: ga (rank 1), gd (rank 2) have the same Forget metric" in md
    assert _md_row(md, "**ga**", "text").startswith("| 1= ★ |")


def test_report_modules_import_only_downwards():
    """The reader and the tables are shared by the leaderboard and the plots: no module of the package imports
    one after it in this order (no cycle; plots, the markdown and the transfer matrix do not import each other or the CLI)."""
    import ast

    import clear_lightning.report as package

    order = ["runs", "tables", "markdown", "plots", "transfer", "cli"]
    for i, name in enumerate(order):
        tree = ast.parse((Path(package.__file__).parent / f"{name}.py").read_text())
        imported = {
            (node.module or "").removeprefix("clear_lightning.report").lstrip(".")
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and (node.level or (node.module or "").startswith("clear_lightning.report"))
        }
        assert imported <= set(order[:i]), (name, imported)
