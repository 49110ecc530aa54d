"""Is the embedded default a testbed whose numbers mean something? Build it from nothing and check.

`python -m clear_lightning.testbed --out bench` builds the upstream models (base, original, gold and their
evaluations) in a fresh artifact root for every (thread count, finetune.seed) pair, each in its own process with
`OMP_NUM_THREADS` set, and writes `bench/testbed.{json,md}`: every component of the original and gold models per
build, the floors they must clear, and whether builds that differ only in the thread count agree (identical weights
digests, or aggregates within the tolerance).

Floors (issue 11): the original knows every evaluation set (ROUGE-L, probability and truth ratio ≥ floor on each);
gold knows the retain and real sets (same floor); on every forget set gold sits clearly below the original (mean
component at least `margin` lower).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

COMPONENTS = ("rougeL_recall", "probability", "truth_ratio")
AGGREGATES = ("forget_metric", "retain_metric", "real_metric", "model_utility")


def weights_digest(model_dir: Path) -> str:
    """sha256 over the safetensors files of a saved model, in name order."""
    h = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build(root: str, overrides: list[str]) -> dict[str, Any]:
    """Build (or find) original + gold and their evaluations under `root`; return their summaries and digests."""
    from hydra import compose, initialize_config_dir

    from clear_lightning.config import CONFIG_DIR, offline_by_default, register_resolvers
    from clear_lightning.evaluation.records import read_records
    from clear_lightning.logging_setup import quiet_libraries
    from clear_lightning.metrics.summary import summarize
    from clear_lightning.pipeline.compose import assemble
    from clear_lightning.pipeline.fit import set_threads
    from clear_lightning.pipeline.upstream import base_model, references

    offline_by_default()
    register_resolvers()
    quiet_libraries()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.root={root}", f"run_dir={root}/run", *overrides])
    import torch

    p = assemble(cfg)
    start = time.perf_counter()
    out: dict[str, Any] = {"digests": {}}
    records = {}
    set_threads(p.settings.threads)
    for which, (path, _, evaluation) in references(p, build=True).items():
        out["digests"][which] = weights_digest(path)
        records[which] = read_records(evaluation / "eval")
    base_path, _ = base_model(p, build=False)
    out["digests"]["base"] = weights_digest(Path(base_path))
    out["seconds"] = time.perf_counter() - start
    out["threads"] = torch.get_num_threads()
    out["original"] = summarize(records["original"], records["gold"])
    out["gold"] = summarize(records["gold"], records["gold"])
    out["sets"] = sorted(records["original"])
    return out


def check(result: dict[str, Any], floor: float, margin: float) -> list[str]:
    """Every floor this build misses, as readable lines (empty = the testbed holds)."""
    from clear_lightning.metrics.summary import set_group

    problems = []
    original, gold = result["original"], result["gold"]
    for name in result["sets"]:
        group = set_group(name)
        if group == "holdout":  # persons neither model saw: reported, no floor
            continue
        for c in COMPONENTS:
            if original[f"{name}/{c}"] < floor:
                problems.append(f"original {name}/{c} = {original[f'{name}/{c}']:.3f} < {floor}")
            if group in ("retain", "real") and gold[f"{name}/{c}"] < floor:
                problems.append(f"gold {name}/{c} = {gold[f'{name}/{c}']:.3f} < {floor}")
        if group == "forget":
            o = sum(original[f"{name}/{c}"] for c in COMPONENTS) / 3
            g = sum(gold[f"{name}/{c}"] for c in COMPONENTS) / 3
            if g > o - margin:
                problems.append(f"gold is not clearly below the original on {name}: {g:.3f} vs {o:.3f}")
    return problems


def _table(results: list[dict[str, Any]]) -> str:
    sets = results[0]["sets"]
    head = "| set | component | " + " | ".join(f"{r['label']} orig / gold" for r in results) + " |"
    lines = [head, "|" + "---|" * (2 + len(results))]
    for name in sets:
        for c in COMPONENTS:
            cells = [f"{r['original'][f'{name}/{c}']:.3f} / {r['gold'][f'{name}/{c}']:.3f}" for r in results]
            lines.append(f"| {name} | {c} | " + " | ".join(cells) + " |")
    for key in (*AGGREGATES, "forget_quality"):
        cells = []
        for r in results:
            o, g = r["original"].get(key), r["gold"].get(key)
            cells.append(" / ".join("—" if v is None else f"{v:.3f}" for v in (o, g)))
        lines.append(f"| **{key}** | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("build", help="one build in this process (what `check` runs per combination)")
    one.add_argument("--root", required=True)
    one.add_argument("overrides", nargs="*")
    parser.add_argument("--out", default="bench", help="where testbed.json and testbed.md go")
    parser.add_argument("--threads", default="1,2", help="OMP_NUM_THREADS values, comma-separated")
    parser.add_argument("--seeds", default="0,1,2", help="finetune.seed values, comma-separated")
    parser.add_argument(
        "--root", default=None, help="parent of the fresh artifact roots (default: a temp dir)"
    )
    parser.add_argument("--floor", type=float, default=0.10)
    parser.add_argument("--margin", type=float, default=0.05, help="how far below the original gold must be")
    parser.add_argument(
        "--tolerance", type=float, default=0.02, help="aggregate agreement across thread counts"
    )
    parser.add_argument(
        "--override", action="append", default=[], help="extra Hydra overrides for every build"
    )
    args = parser.parse_args(argv)
    if args.command == "build":
        print("TESTBED_RESULT " + json.dumps(build(args.root, args.overrides)), flush=True)
        return

    parent = Path(args.root or tempfile.mkdtemp(prefix="testbed-"))
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for threads in [int(t) for t in args.threads.split(",")]:
            label = f"t{threads}/s{seed}"
            root = parent / f"threads{threads}_seed{seed}"
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            cmd = [sys.executable, "-m", "clear_lightning.testbed", "build", "--root", str(root)]
            cmd += [f"finetune.seed={seed}", *args.override]
            print(f"[testbed] {label}: building in {root}", flush=True)
            start = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-4000:])
                raise SystemExit(f"[testbed] build {label} failed (exit {proc.returncode})")
            line = next(x for x in proc.stdout.splitlines() if x.startswith("TESTBED_RESULT "))
            result = {**json.loads(line.removeprefix("TESTBED_RESULT ")), "label": label, "seed": seed}
            result["wall_seconds"] = time.perf_counter() - start
            result["problems"] = check(result, args.floor, args.margin)
            print(
                f"[testbed] {label}: {result['wall_seconds']:.0f} s, digests {result['digests']}, "
                f"{len(result['problems'])} floor(s) missed",
                flush=True,
            )
            for p in result["problems"]:
                print(f"    {p}", flush=True)
            results.append(result)
    agreement = []
    for seed in sorted({r["seed"] for r in results}):
        same = [r for r in results if r["seed"] == seed]
        identical = len({json.dumps(r["digests"], sort_keys=True) for r in same}) == 1
        worst = max(
            (
                abs(a[m][k] - b[m][k])
                for a in same
                for b in same
                for m in ("original", "gold")
                for k in AGGREGATES
            ),
            default=0.0,
        )
        agreement.append(
            {
                "seed": seed,
                "identical_weights": identical,
                "max_aggregate_diff": worst,
                "within_tolerance": worst <= args.tolerance,
            }
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "testbed.json").write_text(json.dumps({"results": results, "agreement": agreement}, indent=1))
    holds = all(not r["problems"] for r in results) and all(a["within_tolerance"] for a in agreement)
    lines = [
        "# The embedded testbed, built from nothing",
        "",
        "Generated by `make testbed-check` (`python -m clear_lightning.testbed --out bench"
        f" --threads {args.threads} --seeds {args.seeds}`); do not edit by hand.",
        "",
        f"Each column is one build in a fresh artifact root and its own process: `t<OMP_NUM_THREADS>/s<finetune.seed>`."
        f" Cells are original / gold. Floors: original ≥ {args.floor} on every component of every set, gold ≥"
        f" {args.floor} on the retain and real sets, gold at least {args.margin} below the original (mean component)"
        " on every forget set.",
        "",
        f"**Verdict: {'the testbed holds' if holds else 'the testbed does NOT hold'}.**",
        "",
        "| build | wall s | base / original / gold weights digest | floors missed |",
        "|---|---|---|---|",
    ]
    for r in results:
        d = r["digests"]
        missed = "; ".join(r["problems"]) or "none"
        lines.append(
            f"| {r['label']} | {r['wall_seconds']:.0f} | {d['base']} / {d['original']} / {d['gold']} | {missed} |"
        )
    lines += [
        "",
        "| finetune.seed | identical weights across thread counts | max aggregate difference |",
        "|---|---|---|",
    ]
    for a in agreement:
        lines.append(f"| {a['seed']} | {a['identical_weights']} | {a['max_aggregate_diff']:.4f} |")
    lines += ["", _table(results), ""]
    (out / "testbed.md").write_text("\n".join(lines))
    print(f"[testbed] {'holds' if holds else 'does NOT hold'}; wrote {out / 'testbed.md'}", flush=True)


if __name__ == "__main__":
    main()
