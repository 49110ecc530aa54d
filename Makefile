# clear_lightning — `make help` lists the targets.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE=1
export HF_DATASETS_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export WANDB_MODE=offline

.PHONY: help setup demo test test-shuffled test-all test-gpu bench bench-gpu gpu-smoke lint format clean testbed-check

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q torch==2.13.0 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q -e '.[dev]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import clear_lightning, lightning, transformers, peft, hydra" && touch $(STAMP)

setup: $(STAMP)  ## create .venv and install (torch 2.13.0 CPU wheel, no CUDA)

demo: setup  ## the main job on the embedded default: tiny LLaVA, CLEAR-mini, gd, forget10, both modalities
	$(PY) -m clear_lightning method=gd modality=both split=forget10

test: setup  ## ruff + the fast test suite (no slow/gpu tests), in file order
	$(PY) -m ruff check .
	$(PY) -m pytest -q -p no:randomly -m "not slow and not gpu"

test-shuffled: setup  ## the fast suite in a random order (pytest-randomly prints its seed; --randomly-seed=N repeats an order)
	$(PY) -m pytest -q -m "not slow and not gpu"

test-all: setup  ## every CPU test, including slow ones
	$(PY) -m pytest -q -p no:randomly -m "not gpu"

bench: setup  ## stage timings, throughput, peak memory → bench/results.{json,md}; shared-prefix evaluation → bench/eval.{json,md}; CV table time → bench/cv.{json,md}
	$(PY) -m clear_lightning.bench --out bench
	$(PY) -m clear_lightning.bench_eval --out bench
	$(PY) -m clear_lightning.cv.bench --out bench

testbed-check: setup  ## build the embedded testbed from nothing under OMP_NUM_THREADS=1,2 × finetune.seed=0,1,2; check floors and agreement → bench/testbed.{json,md}
	$(PY) -m clear_lightning.testbed --out bench --threads 1,2 --seeds 0,1,2

SMOKE := $(PY) -m clear_lightning experiment=gpu_smoke paths.root=$(CURDIR)/runs/gpu_smoke

gpu-smoke: setup  ## GPU: pretrain → finetune → gold → unlearn → eval on the tiny LLaVA, bf16, then QLoRA 4-bit
	$(SMOKE) stage=finetune
	$(SMOKE) stage=gold
	$(SMOKE) method=npo
	$(SMOKE) stage=eval
	$(SMOKE) method=npo model.quantization=4bit
	$(SMOKE) stage=eval model.quantization=4bit

bench-gpu: setup  ## GPU: random-init LLaVA-7B, KL unlearning: peak memory, tokens/s (LoRA bf16, QLoRA, 2nd copy) → bench/gpu.{json,md}; shared-prefix evaluation → bench/eval-llava_1_5_7b.{json,md}
	$(PY) -m clear_lightning.bench_gpu --out bench
	$(PY) -m clear_lightning.bench_eval --model llava_1_5_7b --device cuda --out bench

test-gpu: setup  ## the tests marked gpu (need CUDA)
	$(PY) -m pytest -q -m gpu

lint: setup  ## ruff check + format check
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

format: setup  ## ruff format
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

clean:  ## remove runs and artifacts (models, data) — keeps .venv
	rm -rf runs artifacts outputs multirun

# --- CV track (docs/cv-track.md) ---------------------------------------------------------------------------------
.PHONY: cv-table bench-cv

cv-table: setup  ## CV track: Table 2 + Fig. 6 for every method on the embedded default → docs/cv-results/
	$(PY) -m clear_lightning.cv stage=table run_dir=docs/cv-results

bench-cv: setup  ## CV track: wall time of the full table, fresh and cached → bench/cv.{json,md}
	$(PY) -m clear_lightning.cv.bench --out bench
