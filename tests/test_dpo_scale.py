"""DPO's scale: the paper's −log σ(β·m) by default, OpenUnlearning's (2/β)·(−log σ(β·m)) on request."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf
from transformers import LlamaForCausalLM

from clear_lightning.config import CONFIG_DIR
from clear_lightning.data.encoding import IGNORE_INDEX
from clear_lightning.methods import losses
from clear_lightning.methods.dpo import DirectPreference
from clear_lightning.models.tiny import TinyLlamaSpec, text_config, train_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


def _neg_log_sigmoid(x: float) -> float:
    return math.log1p(math.exp(-x))


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_scale_hand_values(beta: float) -> None:
    # margins m = (chosen − chosen_ref) − (rejected − rejected_ref) = 2 and −1
    chosen, chosen_ref = torch.tensor([-1.0, -2.0]), torch.tensor([-2.0, -2.0])
    rejected, rejected_ref = torch.tensor([-3.0, -1.0]), torch.tensor([-2.0, -2.0])
    paper = (_neg_log_sigmoid(beta * 2) + _neg_log_sigmoid(beta * -1)) / 2
    args = (chosen, chosen_ref, rejected, rejected_ref, beta)
    assert losses.dpo_loss(*args).item() == pytest.approx(paper)  # default = paper
    assert losses.dpo_loss(*args, "paper").item() == pytest.approx(paper)
    assert losses.dpo_loss(*args, "openunlearning").item() == pytest.approx(2 / beta * paper)
    if beta == 0.1:
        assert losses.dpo_loss(*args, "openunlearning").item() == pytest.approx(20 * paper)
    with pytest.raises(ValueError, match="dpo scale 'trl'"):
        losses.dpo_loss(*args, "trl")


def test_dpo_yaml_defaults_to_the_paper() -> None:
    cfg = OmegaConf.load(CONFIG_DIR / "method" / "dpo.yaml")
    assert cfg.scale == "paper" and cfg.beta == 0.1


def test_dpo_module_scale_at_the_reference() -> None:
    """θ = θ₀ (fresh LoRA): L_DPO = log 2 (paper) or (2/β)·log 2 = 20·log 2 (OpenUnlearning, β = 0.1)."""
    tokenizer = train_tokenizer(["[INST] Where was Ada born? [/INST] I don't know."], 300)
    spec = TinyLlamaSpec(hidden_size=32, intermediate_size=64, num_layers=2, vocab_size=300)
    torch.manual_seed(0)
    ids = torch.randint(5, len(tokenizer), (2, 8))
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, -3:] = ids[:, -3:]
    stream = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    lora = {"r": 4, "lora_alpha": 8, "target_modules": r".*layers.*\.(q_proj|v_proj)"}
    for scale, factor in (("paper", 1.0), ("openunlearning", 20.0)):
        torch.manual_seed(0)
        dpo = DirectPreference(LlamaForCausalLM(text_config(tokenizer, spec)), scale=scale, lora_config=lora)
        loss, parts = dpo.compute_loss({"forget": stream, "idk": stream})
        assert parts["dpo"].item() == pytest.approx(factor * math.log(2), rel=1e-5)
        assert loss.item() == pytest.approx((parts["dpo"] + parts["idk_nll"]).item(), rel=1e-6)
    with pytest.raises(ValueError, match="dpo scale 'x'"):
        DirectPreference(torch.nn.Linear(1, 1), scale="x")
