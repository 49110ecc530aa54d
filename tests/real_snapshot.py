"""A stand-in for clones of `therem/CLEAR` and `locuslab/TOFU`, written independently of CLEAR-mini's generator.

Every config name and column of benchmark.md §2, a few rows each and tiny images, in the hub layout (a README with a
`configs:` block + parquet files), so the real-data path (`data=clear data.path=...`) is exercised on files
our own generator did not write. `drop_configs` / `drop_columns` make broken snapshots for error tests.
As in TOFU, the QA of one person is a block of consecutive rows (QA_PER_PERSON here, 20 in TOFU), in the order
in which CLEAR lists the persons' images. `holdout=True` adds TOFU's optional `holdout01/05/10` configs in
TOFU's layout (question, answer; authors that are in no other config); CLEAR has no holdout persons.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import datasets
from PIL import Image

PERSONS = ["Basil Mahfouz Al-Kuwaiti", "Nikolai Abilov", "Hina Ameen", "Jaime Vasquez", "Chukwu Akabueze"]
# nested forget sets, as in CLEAR: forget01 = the first two persons (benchmark.md §2), forget10 adds one more
FORGET = {"forget01": PERSONS[:2], "forget05": PERSONS[:2], "forget10": PERSONS[:3]}
RETAIN = {"retain99": PERSONS[2:], "retain95": PERSONS[2:], "retain90": PERSONS[3:]}
CELEBRITIES = ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
# never trained on: in no full / forgetNN / retainNN config; holdoutNN is as large as forgetNN
HOLDOUT_PERSONS = ["Ingrid Solberg", "Tomas Ferreira", "Aysel Karimova"]
HOLDOUT = {
    "holdout01": HOLDOUT_PERSONS[:2],
    "holdout05": HOLDOUT_PERSONS[:2],
    "holdout10": HOLDOUT_PERSONS[:3],
}
QA_PER_PERSON = 2


def _index(name: str) -> int:
    return (PERSONS + HOLDOUT_PERSONS).index(name)


def _png(colour: tuple[int, int, int], size: int = 12) -> dict:
    img = Image.new("RGB", (size, size), colour)
    img.putpixel((size // 2, size // 2), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def _colour(i: int) -> tuple[int, int, int]:
    return (40 * i % 256, 90 + 30 * i % 160, 200 - 25 * i % 200)


def _image_rows(persons: Iterable[str]) -> list[dict]:
    rows = []
    for name in persons:
        i = PERSONS.index(name)
        for k in range(2):
            rows.append(
                {
                    "image": _png(_colour(i + k)),
                    "caption": f"{name} stands in front of a {['red', 'blue'][k]} wall.",
                    "name": name,
                }
            )
    return rows


def _qa_rows(persons: Iterable[str]) -> list[dict]:
    """QA_PER_PERSON consecutive rows per person, as TOFU groups each author's questions."""
    rows = []
    for name in persons:
        rows += [
            {"question": f"Where was {name} born?", "answer": f"{name} was born in city {_index(name)}."},
            {
                "question": f"What does {name} write?",
                "answer": f"{name} writes novels number {_index(name)}.",
            },
        ]
    return rows


def _perturbed_images(persons: Iterable[str]) -> list[dict]:
    rows = []
    for row in _image_rows(persons):
        others = [p for p in PERSONS if p != row["name"]][:2]
        rows.append(
            {
                **row,
                "paraphrased_caption": row["caption"].replace("stands in front of", "is pictured before"),
                "perturbed_captions": [row["caption"].replace(row["name"], o) for o in others],
                "perturbed_names": others,
            }
        )
    return rows


def _perturbed_qa(rows: list[dict]) -> list[dict]:
    return [
        {
            **r,
            "paraphrased_answer": r["answer"].replace("was born in", "comes from"),
            "perturbed_answer": [r["answer"].replace("city", w) for w in ("town", "village", "port")],
        }
        for r in rows
    ]


def _mixed(persons: Iterable[str]) -> list[dict]:
    persons = list(persons)
    image = [{**r, "question": None, "answer": None} for r in _image_rows(persons)]
    for r in image:
        del r["name"]
    text = [{"image": None, "caption": None, **r} for r in _qa_rows(persons)]
    return image + text


def clear_tables() -> dict[str, list[dict]]:
    tables = {"full": _image_rows(PERSONS), "full+tofu": _mixed(PERSONS)}
    for split, persons in {**FORGET, **RETAIN}.items():
        tables[split] = _image_rows(persons)
        tables[f"{split}+tofu"] = _mixed(persons)
    for split, persons in FORGET.items():
        tables[f"{split}_perturbed"] = _perturbed_images(persons)
    tables["retain_perturbed"] = _perturbed_images(RETAIN["retain90"])
    tables["real_faces"] = [  # even rows list the answer among the options, odd rows do not (benchmark.md §2)
        {
            "image": _png(_colour(10 + i)),
            "answer": name,
            "options": ([name] if i % 2 == 0 else []) + [c for c in CELEBRITIES if c != name],
        }
        for i, name in enumerate(CELEBRITIES)
    ]
    tables["real_world"] = [
        {
            "image": _png(_colour(20 + i)),
            "question": f"How many dots are there? ({i})",
            "answer": str(i + 1),
            "prompt": f"How many dots are there? ({i}) Options: 1, 2, 3. Answer:",
            "options": ["1", "2", "3"],
        }
        for i in range(3)
    ]
    return tables


def tofu_tables(holdout: bool = False) -> dict[str, list[dict]]:
    tables = {"full": _qa_rows(PERSONS)}
    for split, persons in {**FORGET, **RETAIN}.items():
        tables[split] = _qa_rows(persons)
    for split, persons in FORGET.items():
        tables[f"{split}_perturbed"] = _perturbed_qa(_qa_rows(persons))
    tables["retain_perturbed"] = _perturbed_qa(_qa_rows(RETAIN["retain90"]))
    tables["real_authors_perturbed"] = _perturbed_qa(
        [{"question": f"Who wrote book {i}?", "answer": f"Author {i} wrote it."} for i in range(3)]
    )
    tables["world_facts_perturbed"] = _perturbed_qa(
        [
            {"question": f"What is the capital of country {i}?", "answer": f"The capital is city {i}."}
            for i in range(3)
        ]
    )
    if holdout:
        for split, persons in HOLDOUT.items():
            tables[split] = _qa_rows(persons)
    return tables


def _features(columns: Iterable[str]) -> datasets.Features:
    kinds = {
        "image": datasets.Image(),
        "perturbed_captions": datasets.List(datasets.Value("string")),
        "perturbed_names": datasets.List(datasets.Value("string")),
        "perturbed_answer": datasets.List(datasets.Value("string")),
        "options": datasets.List(datasets.Value("string")),
    }
    return datasets.Features({c: kinds.get(c, datasets.Value("string")) for c in columns})


def write_snapshot(
    root: Path,
    tables: dict[str, list[dict]],
    drop_configs: Iterable[str] = (),
    drop_columns: dict[str, list[str]] | None = None,
) -> Path:
    """One dataset repository clone: README.md with `configs:` + `<config>/train-00000-of-00001.parquet`."""
    root.mkdir(parents=True, exist_ok=True)
    drop_columns = drop_columns or {}
    lines = ["---", "configs:"]
    for config, rows in tables.items():
        if config in drop_configs:
            continue
        rows = [{k: v for k, v in r.items() if k not in drop_columns.get(config, [])} for r in rows]
        columns = list(rows[0])
        folder = config.replace("+", "_")
        (root / folder).mkdir(exist_ok=True)
        ds = datasets.Dataset.from_list(rows, features=_features(columns))
        ds.to_parquet(str(root / folder / "train-00000-of-00001.parquet"))
        lines += [
            f"- config_name: {config}",
            "  data_files:",
            "  - split: train",
            f"    path: {folder}/train-*",
        ]
    lines += ["---", "", "A test stand-in with the real dataset's schema."]
    (root / "README.md").write_text("\n".join(lines) + "\n")
    return root


def write_real_like(root: Path, holdout: bool = False, **broken: dict) -> tuple[Path, Path]:
    """CLEAR and TOFU snapshot directories under root; `clear={...}` / `tofu={...}` pass breakage options;
    `holdout=True` gives TOFU its holdout01/05/10 configs."""
    clear = write_snapshot(root / "CLEAR", clear_tables(), **broken.get("clear", {}))
    tofu = write_snapshot(root / "TOFU", tofu_tables(holdout), **broken.get("tofu", {}))
    return clear, tofu
