"""The paper's setup through the same code: the real-data loader on a real-schema snapshot, the text track,
prompt layouts of benchmark.md §3, QLoRA and gradient checkpointing on CPU, every experiment and trainer preset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image
from real_snapshot import write_real_like

from clear_lightning.config import CONFIG_DIR
from clear_lightning.data.encoding import IGNORE_INDEX, ExampleEncoder, PromptTemplate
from clear_lightning.data.examples import Example
from clear_lightning.data.source import SnapshotSource
from clear_lightning.errors import ClearConfigError
from clear_lightning.models.tiny import TinyLlavaSpec, build_processor, train_tokenizer
from clear_lightning.pipeline import run

# debug=fast without its CLEAR-mini sizes, for data sources that are not CLEAR-mini
FAST = [
    "model.build.hidden_size=64",
    "model.build.intermediate_size=128",
    "model.build.num_layers=1",
    "model.build.vocab_size=600",
    "finetune.epochs=1",
    "finetune.batch_size=8",
    "pretrain.epochs=1",
    "optim.epochs=1",
    "eval.max_items=4",
    "eval.max_new_tokens=4",
]


@pytest.fixture(scope="module")
def real_like(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_real_like(tmp_path_factory.mktemp("real"))


# --- the real-data loader ----------------------------------------------------------------------
def test_real_schema_snapshot_runs_end_to_end(make_cfg, real_like, tmp_path) -> None:
    clear, tofu = real_like
    cfg = make_cfg(
        f"paths.root={tmp_path}",  # its own artifact store: the session's holds the default pipeline only
        "data=clear",
        f"data.path={clear}",
        f"data.tofu_path={tofu}",
        "method=npo",
        *FAST,
        fast=False,
    )
    result = run(cfg)
    summary = result["summary"]
    assert summary["forget_quality"] is not None
    # rows recounted on load (forget10 = 3 persons × 2 images here, whatever the name implies)
    rows = json.loads((Path(cfg.run_dir) / "provenance.json").read_text())["data_rows"]
    assert rows["clear"]["forget10"] == 6 and rows["tofu"]["forget10_perturbed"] == 6
    # options with and without the correct answer: it is never counted twice
    faces = [json.loads(line) for line in (Path(cfg.run_dir) / "eval" / "real_faces.jsonl").open()]
    assert [len(r["losses_perturbed"]) for r in faces] == [2, 2, 2]


def test_missing_configs_and_columns_are_listed_together(tmp_path: Path) -> None:
    clear, tofu = write_real_like(
        tmp_path,
        clear={"drop_configs": ["real_world"], "drop_columns": {"forget10_perturbed": ["perturbed_names"]}},
        tofu={"drop_configs": ["world_facts_perturbed"]},
    )
    source = SnapshotSource("clear", str(clear), str(tofu))
    with pytest.raises(ClearConfigError) as err:
        source.validate()
    message = str(err.value)
    assert "clear: config 'real_world' is missing" in message
    assert "clear: config 'forget10_perturbed' lacks column(s) ['perturbed_names']" in message
    assert "tofu: config 'world_facts_perturbed' is missing" in message
    assert "fix:" in message


def test_a_validated_snapshot_is_stamped_and_a_changed_one_revalidated(tmp_path: Path) -> None:
    clear, tofu = write_real_like(tmp_path)
    source = SnapshotSource("clear", str(clear), str(tofu))
    counts = source.validate()
    assert counts["clear"]["real_faces"] == 3
    assert source._validation_stamp().exists()
    (clear / "real_world").rename(clear / "gone")  # the content hash changes: validated again, and fails
    with pytest.raises(ClearConfigError, match="real_world"):
        SnapshotSource("clear", str(clear), str(tofu)).validate()


def test_an_uncached_hub_id_offline_names_the_fix() -> None:
    source = SnapshotSource("clear", "nobody-here/no-such-dataset", "nobody-here/no-tofu")
    with pytest.raises(ClearConfigError, match="offline mode is on") as err:
        source.load("clear", "full")
    assert "data.path" in str(err.value)


# --- benchmark.md §3 prompt layouts on a locally trained tokenizer -------------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    texts = ["USER: Who is he? ASSISTANT: Basil Mahfouz.", "[INST] Where was he born? [/INST]Kuwait City."]
    return train_tokenizer(texts * 20, 300)


def _answer_part(tokenizer, row) -> str:
    return tokenizer.decode(
        [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != IGNORE_INDEX]
    )


def test_llava_template_layout(tokenizer) -> None:
    processor = build_processor(tokenizer, TinyLlavaSpec(image_size=32, patch_size=8))
    template = PromptTemplate(
        "USER: {image}{question} ASSISTANT:", "<image>\n", " "
    )  # conf/model/llava_1_5_7b
    encoder = ExampleEncoder(processor, template)
    image_row = encoder.encode(
        Example("a", "s", "caption", "Who is he?", "Basil Mahfouz.", Image.new("RGB", (40, 40)))
    )
    assert tokenizer.decode(image_row["input_ids"]) == (
        "<s>USER: " + "<image>" * 16 + "\nWho is he? ASSISTANT: Basil Mahfouz.</s>"
    )
    assert _answer_part(tokenizer, image_row) == " Basil Mahfouz.</s>"  # no image or prompt token supervised
    text_row = encoder.encode(Example("b", "s", "qa", "Who is he?", "Basil Mahfouz."))
    assert tokenizer.decode(text_row["input_ids"]) == "<s>USER: Who is he? ASSISTANT: Basil Mahfouz.</s>"


def test_llama2_template_layout(tokenizer) -> None:
    encoder = ExampleEncoder(
        tokenizer, PromptTemplate("[INST] {question} [/INST]", "", "")
    )  # conf/model/llama2_7b
    row = encoder.encode(Example("b", "s", "qa", "Where was he born?", "Kuwait City."))
    assert tokenizer.decode(row["input_ids"]) == "<s>[INST] Where was he born? [/INST]Kuwait City.</s>"
    assert _answer_part(tokenizer, row) == "Kuwait City.</s>"
    with pytest.raises(ValueError, match="text-only"):
        encoder.encode(Example("c", "s", "caption", "Describe.", "A face.", Image.new("RGB", (8, 8))))


@pytest.mark.parametrize("model", ["llava_1_5_7b", "llama2_7b", "mistral_7b", "tiny_llama"])
def test_model_yaml_templates(model: str) -> None:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"model={model}"])
    layout = instantiate(cfg.model.prompt).prompt("Q?", has_image=cfg.model.model_class != "causal_lm")
    assert (
        layout
        == {
            "llava_1_5_7b": "USER: <image>\nQ? ASSISTANT:",
            "llama2_7b": "[INST] Q? [/INST]",
            "mistral_7b": "[INST] Q? [/INST]",
            "tiny_llama": "[INST] Q? [/INST]",
        }[model]
    )


# --- the text track -----------------------------------------------------------------------------
def test_text_track_runs_and_reports_skipped_visual_sets(make_cfg, tmp_path) -> None:
    cfg = make_cfg(f"paths.root={tmp_path}", "model=tiny_llama", "modality=text", "method=gd")
    summary = run(cfg)["summary"]
    assert set(summary["skipped_sets"]) == {
        "forget_caption",
        "forget_face_name",
        "retain_caption",
        "retain_face_name",
        "real_faces",
        "real_world",
        "holdout_caption",
        "holdout_face_name",
    }
    assert all("text-only" in why for why in summary["skipped_sets"].values())
    jsonl = sorted(p.stem for p in (Path(cfg.run_dir) / "eval").glob("*.jsonl"))
    assert jsonl == ["forget_qa", "holdout_qa", "retain_qa"]


def test_text_only_model_refuses_visual_forgetting(make_cfg, tmp_path) -> None:
    with pytest.raises(ClearConfigError, match="use modality=text"):
        run(make_cfg(f"paths.root={tmp_path}", "model=tiny_llama", "modality=both"))
    assert not (tmp_path / "artifacts" / "base").exists()  # refused before anything was built


# --- memory: QLoRA, gradient checkpointing, the reference model -----------------------------------
def test_qlora_unlearning_runs_on_cpu(make_cfg, tmp_path) -> None:
    pytest.importorskip("bitsandbytes")
    cfg = make_cfg(f"paths.root={tmp_path}", "model.quantization=4bit", "method=kl")
    summary = run(cfg)["summary"]
    assert summary["forget_quality"] is not None


def test_gradient_checkpointing_trains_a_lora_student(tiny_checkpoint) -> None:
    from clear_lightning.methods.kl import KLMinimisation
    from clear_lightning.models.load import load_model

    model = load_model(str(tiny_checkpoint), gradient_checkpointing=True)
    assert model.is_gradient_checkpointing
    lora = {"r": 4, "lora_alpha": 8, "target_modules": r".*language_model.*\.(q_proj|v_proj)"}
    method = KLMinimisation(model, lora_config=lora)
    ids = torch.tensor([[2, 5, 6, 7, 8]])
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.tensor([[-100, -100, 6, 7, 8]]),
    }
    with torch.no_grad():  # a non-zero adapter, so the retain KL has a gradient too
        for name, p in method.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    loss, _ = method.compute_loss({"forget": batch, "retain": batch})
    loss.backward()
    grads = [p.grad for n, p in method.model.named_parameters() if "lora_" in n]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_copy_reference_keeps_a_frozen_second_copy(tiny_checkpoint) -> None:
    from clear_lightning.methods.kl import KLMinimisation
    from clear_lightning.models.load import load_model

    lora = {"r": 4, "lora_alpha": 8, "target_modules": r".*language_model.*\.(q_proj|v_proj)"}
    shared = KLMinimisation(load_model(str(tiny_checkpoint)), lora_config=lora)
    copied = KLMinimisation(load_model(str(tiny_checkpoint)), lora_config=lora, reference="copy")
    assert shared.reference_model is None
    assert copied.reference_model is not None
    assert not any(p.requires_grad for p in copied.reference_model.parameters())
    with pytest.raises(ClearConfigError, match="method.reference"):
        KLMinimisation(load_model(str(tiny_checkpoint)), lora_config=lora, reference="twice")


def test_bench_gpu_code_path_at_tiny_scale_on_cpu(tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    from clear_lightning.bench_gpu import run as bench
    from clear_lightning.bench_gpu import to_markdown

    report = bench("tiny", device="cpu", steps=2, warmup=1, workdir=tmp_path)
    by = {r["variant"]: r for r in report["results"]}
    assert set(by) == {"lora_bf16", "qlora_4bit", "copy_reference"}
    assert by["lora_bf16"]["reference_copy_gb"] == 0 and by["copy_reference"]["reference_copy_gb"] > 0
    assert report["memory_ratio_ours_vs_copy"] < 0.6  # one copy of the weights instead of two
    assert by["qlora_4bit"]["weights_gb"] < by["lora_bf16"]["weights_gb"]
    assert all(r["tokens_per_second"] > 0 for r in report["results"])
    assert "Ours / authors'" in to_markdown(report)


# --- every experiment, trainer and launcher preset composes ----------------------------------------
@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_composes(experiment: str) -> None:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"])
    if experiment.startswith("paper_"):
        assert cfg.data.name == "clear" and cfg.logger._target_.endswith("WandbLogger")
        text = experiment in ("paper_llama2", "paper_mistral")  # appendix D: batch 4 × 1 for the text track
        want = (5, 4, 1, 1e-5) if text else (5, 1, 2, 1e-5)
        assert (cfg.optim.epochs, cfg.optim.batch_size, cfg.optim.grad_accum, cfg.optim.lr) == want
        assert cfg.finetune.lora.r == 8 and cfg.finetune.lora.lora_alpha == 32
        assert cfg.finetune.lora.target_modules == cfg.model.finetune_targets
    if experiment in ("paper_llama2", "paper_mistral"):
        assert cfg.model.model_class == "causal_lm" and cfg.modality.name == "text"
        assert cfg.model.name == experiment.replace("paper_", "") + "_7b"
        assert (cfg.finetune.epochs, cfg.finetune.batch_size) == (5, 4)
    if experiment == "paper_llava":
        assert (cfg.finetune.epochs, cfg.finetune.batch_size) == (3, 12)


MODEL_OVERLAYS = sorted(
    p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml") if (CONFIG_DIR / "model" / p.name).exists()
)


@pytest.mark.parametrize("experiment", MODEL_OVERLAYS)
def test_model_overlays_are_the_paper_recipe_with_their_model(experiment: str) -> None:
    """`experiment=<model>`: the paper's setup (real CLEAR, its recipe) with that model; its text-track models
    take the text track's (appendix D) recipe, the others the multimodal one."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"])
    text = cfg.model.model_class == "causal_lm"
    assert cfg.model.name == experiment and cfg.model.path and cfg.model.dtype == "bfloat16"
    assert cfg.data.name == "clear" and cfg.logger._target_.endswith("WandbLogger")
    want = (5, 4, 1, 1e-5) if text else (5, 1, 2, 1e-5)
    assert (cfg.optim.epochs, cfg.optim.batch_size, cfg.optim.grad_accum, cfg.optim.lr) == want
    assert (cfg.finetune.epochs, cfg.finetune.batch_size) == ((5, 4) if text else (3, 12))
    assert cfg.finetune.lora.target_modules == cfg.model.finetune_targets
    assert cfg.modality.name == ("text" if text else "both")
    assert len(MODEL_OVERLAYS) == 9


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp", "fsdp", "deepspeed"])
def test_trainer_presets_compose(trainer: str) -> None:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"trainer={trainer}"])
    assert cfg.trainer._target_ == "lightning.Trainer"
    if trainer == "fsdp":
        from hydra.utils import instantiate

        layers = instantiate(cfg.trainer.strategy.auto_wrap_policy)
        assert {c.__name__ for c in layers} >= {"LlamaDecoderLayer", "CLIPEncoderLayer"}


def test_slurm_launcher_preset_composes() -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm_gpu"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.gpus_per_node == 1


def test_qlora_gradients_match_the_dequantized_model(tiny_checkpoint) -> None:
    """QLoRA's LoRA gradients equal those of an fp32 twin holding the dequantized weights — also after an
    eval-mode forward (θ₀, evaluation), which on CPU once switched bitsandbytes to a kernel without autograd."""
    bnb = pytest.importorskip("bitsandbytes")
    from clear_lightning.methods.kl import KLMinimisation
    from clear_lightning.models.load import load_model

    quantized = load_model(str(tiny_checkpoint), quantization="4bit")
    twin = load_model(str(tiny_checkpoint))
    for name, module in quantized.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            w = bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state)
            twin.get_submodule(name).weight.data.copy_(w)
    lora = {"r": 4, "lora_alpha": 8, "target_modules": r".*language_model.*\.(q_proj|v_proj|down_proj)"}
    ids = torch.tensor([[2, 5, 6, 7, 8, 9]])
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.tensor([[-100, -100, 6, 7, 8, 9]]),
    }
    grads = []
    for model in (quantized, twin):
        torch.manual_seed(0)
        method = KLMinimisation(model, lora_config=lora)
        with torch.no_grad():
            for n, p in sorted(method.model.named_parameters()):
                if "lora_B" in n:
                    p.normal_(0, 0.1)
        method.reference_forward(batch)  # an eval-mode, no-grad forward first
        loss, _ = method.compute_loss({"forget": batch, "retain": batch})
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in method.model.named_parameters() if "lora_" in n})
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], rtol=1e-3, atol=1e-5, msg=n)
