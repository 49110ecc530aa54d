"""Every method YAML instantiates as the unlearn stage does and trains on a tiny random LLaVA with real batches."""

from __future__ import annotations

import copy
import math

import lightning as L
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from clear_lightning.config import options
from clear_lightning.data.batching import PairedStreams, StreamCollator
from clear_lightning.data.encoding import IGNORE_INDEX, ExampleEncoder, PromptTemplate
from clear_lightning.data.examples import Example
from clear_lightning.data.idk import load_idk_answers
from clear_lightning.methods import losses
from clear_lightning.models.tiny import TinyLlavaSpec, build_model, build_processor, train_tokenizer
from clear_lightning.pipeline.compose import assemble

METHODS = options("method")
LORA = {"r": 4, "lora_alpha": 8, "target_modules": r".*language_model.*\.(q_proj|v_proj|down_proj)"}


def _examples(prefix: str, n: int) -> list[Example]:
    rows = []
    for i in range(n):
        image = Image.new("RGB", (32, 32), (40 * i % 255, 90, 160)) if i % 2 else None
        question = "Describe the image." if image else f"Where was {prefix} {i} born?"
        rows.append(
            Example(f"{prefix}{i}", prefix, "caption" if image else "qa", question, f"In town {i}.", image)
        )
    return rows


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    """A 2-layer random LLaVA, its encoder, and forget/retain examples (text and image rows)."""
    torch.manual_seed(0)
    idk = load_idk_answers()
    forget, retain = _examples("forget", 6), _examples("retain", 6)
    texts = [e.question + " " + e.answer for e in forget + retain] + idk + ["USER: ASSISTANT:"]
    spec = TinyLlavaSpec(hidden_size=32, intermediate_size=64, num_layers=2, vocab_size=300)
    tokenizer = train_tokenizer(texts, spec.vocab_size)
    model = build_model(tokenizer, spec).eval()
    encoder = ExampleEncoder(build_processor(tokenizer, spec), PromptTemplate())
    return {"model": model, "encoder": encoder, "forget": forget, "retain": retain, "idk": idk}


def _loader(tiny, streams, batch_size: int = 2, n: int = 6) -> DataLoader:
    data = PairedStreams(tiny["forget"][:n], tiny["encoder"], streams, tiny["retain"], tiny["idk"], seed=0)
    return DataLoader(data, batch_size=batch_size, collate_fn=StreamCollator(tiny["encoder"].pad_id))


def _method(make_cfg, tiny, name: str, *overrides: str, lora: dict | None = None, lr: float = 1e-2):
    """Instantiated exactly as the unlearn stage does: the composition root's method partial."""
    p = assemble(make_cfg(f"method={name}", f"optim.lr={lr}", "optim.warmup_epochs=0", *overrides))
    return p.method(model=copy.deepcopy(tiny["model"]), **({"lora_config": lora} if lora else {}))


def _trainer(**kwargs) -> L.Trainer:
    defaults = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    return L.Trainer(**{**defaults, "enable_model_summary": False, **kwargs})


@pytest.mark.parametrize("name", METHODS)
def test_method_fits_and_moves_only_the_adapter(make_cfg, tiny, name: str) -> None:
    method = _method(make_cfg, tiny, name)
    assert method.is_lora and method.hparams.l1_lambda == 0.0
    loader = _loader(tiny, type(method).streams)
    probe = next(iter(loader))["forget"]
    ref_before = method.reference_forward(probe).logits.clone()
    params_before = {n: p.detach().clone() for n, p in method.model.named_parameters()}
    trainer = _trainer(fast_dev_run=2, accumulate_grad_batches=method.trainer_accumulation(2))
    trainer.fit(method, loader)
    assert trainer.global_step == (1 if method.automatic_optimization else 2)  # SCRUB accumulates itself
    assert torch.equal(method.reference_forward(probe).logits, ref_before)  # θ₀ bit-identical
    assert not torch.allclose(method.unlearned_model()(**_inputs(probe)).logits, ref_before)
    changed = {n for n, p in method.model.named_parameters() if not torch.equal(p, params_before[n])}
    assert changed and all("lora_" in n for n in changed)


def _inputs(batch: dict) -> dict:
    return {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values")}


@pytest.mark.parametrize("name", ["ga", "scrub"])
def test_full_parameter_student_keeps_a_frozen_copy(make_cfg, tiny, name: str) -> None:
    method = _method(make_cfg, tiny, name, "method.lora=false", lr=1e-3)
    assert method.reference_model is not None and not method.is_lora
    assert not any(p.requires_grad for p in method.reference_model.parameters())
    theta0 = {n: p.detach().clone() for n, p in method.reference_model.named_parameters()}
    _trainer(fast_dev_run=2).fit(method, _loader(tiny, type(method).streams))
    assert all(torch.equal(p, theta0[n]) for n, p in method.reference_model.named_parameters())
    assert any(not torch.equal(p, theta0[n]) for n, p in method.model.named_parameters())


@pytest.mark.parametrize("name", ["npo", "dpo", "kl", "scrub"])
def test_gradients_reach_only_lora_parameters(make_cfg, tiny, name: str) -> None:
    method = _method(make_cfg, tiny, name)
    for n, p in method.model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.1)  # off θ₀, so KL terms have a gradient too
    batch = next(iter(_loader(tiny, type(method).streams)))
    loss, _ = method.compute_loss(batch)
    loss.backward()
    with_grad = {
        n for n, p in method.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0
    }
    assert with_grad and all("lora_" in n for n in with_grad)


@pytest.mark.parametrize("name", ["kl", "llmu", "scrub"])
def test_retain_kl_is_reference_to_student(make_cfg, tiny, name: str) -> None:
    method = _method(make_cfg, tiny, name, "method.max_steps_per_cycle=0" if name == "scrub" else "seed=0")
    generator = torch.Generator().manual_seed(0)  # the same student whatever ran before (any test order)
    for n, p in method.model.named_parameters():
        if "lora_B" in n:
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=generator) * 3.0)
    batch = next(iter(_loader(tiny, type(method).streams)))
    _, parts = method.compute_loss(batch)
    retain = batch["retain"]
    ref, student = method.reference_forward(retain).logits, method(retain).logits
    forward_kl = losses.answer_kl(ref, student, retain["labels"])  # KL(p_θ₀ ‖ p_θ), benchmark.md §5
    assert parts["retain_kl"].item() == pytest.approx(forward_kl.item(), rel=1e-5)
    # which direction answer_kl computes is pinned on hand-computed distributions (test_methods.py): here the
    # student's and reference's distributions are close, so KL(p‖q) ≈ KL(q‖p) and comparing them proves nothing


def test_npo_and_dpo_at_the_reference(make_cfg, tiny) -> None:
    npo = _method(make_cfg, tiny, "npo", "method.beta=0.5")  # fresh LoRA: B = 0, so θ = θ₀
    batch = next(iter(_loader(tiny, ("forget", "retain", "idk"))))
    assert npo.compute_loss(batch)[0].item() == pytest.approx(2 / 0.5 * math.log(2), rel=1e-5)
    dpo = _method(make_cfg, tiny, "dpo")
    loss, parts = dpo.compute_loss(batch)
    assert parts["dpo"].item() == pytest.approx(math.log(2), rel=1e-5)
    idk_nll = losses.nll(dpo.reference_forward(batch["idk"]).logits, batch["idk"]["labels"])
    assert loss.item() == pytest.approx(math.log(2) + idk_nll.item(), rel=1e-5)  # DPO is not overwritten


def test_l1_adds_exactly_lambda_times_lora_abs_sum(make_cfg, tiny) -> None:
    method = _method(make_cfg, tiny, "npo_retain", "method.l1_lambda=0.01")
    for n, p in method.model.named_parameters():
        if "lora_" in n:
            torch.nn.init.normal_(p)
    batch = next(iter(_loader(tiny, type(method).streams)))
    loss, parts = method.compute_loss(batch)
    total = method.regularised(loss, parts)
    by_hand = sum(p.abs().sum() for n, p in method.model.named_parameters() if "lora_" in n)
    assert (total - loss).item() == pytest.approx(0.01 * by_hand.item(), rel=1e-5)
    with pytest.raises(ValueError, match="set method.lora=true"):
        type(method)(copy.deepcopy(tiny["model"]), lora=False, l1_lambda=0.01)


# --- SCRUB -------------------------------------------------------------------------------------
def test_scrub_phase_cycle(make_cfg, tiny) -> None:
    scrub = _method(make_cfg, tiny, "scrub", "method.max_steps_per_cycle=1", "method.min_steps_per_cycle=2")
    assert [scrub.phase(s, epoch=0) for s in range(6)] == ["max", "min", "min"] * 2
    scrub.max_epochs_active = 1
    assert {scrub.phase(s, epoch=1) for s in range(6)} == {"min"}


@pytest.mark.parametrize(("grad_accum", "steps"), [(1, {"max": 2, "min": 10}), (2, {"max": 1, "min": 5})])
def test_scrub_counts_max_and_min_steps(make_cfg, tiny, grad_accum: int, steps: dict) -> None:
    # 6 batches per epoch, 2 epochs, cycle (max 1, min 2), max phase only in epoch 0
    over = ("method.max_steps_per_cycle=1", "method.min_steps_per_cycle=2", "method.max_epochs_active=1")
    scrub = _method(make_cfg, tiny, "scrub", *over, f"optim.grad_accum={grad_accum}", "method.l1_lambda=0.01")
    assert scrub.grad_accum == grad_accum and not scrub.automatic_optimization
    trainer = _trainer(max_epochs=2, accumulate_grad_batches=scrub.trainer_accumulation(grad_accum))
    trainer.fit(scrub, _loader(tiny, scrub.streams, batch_size=1))
    assert scrub.steps_done == steps
    assert trainer.global_step == sum(steps.values()) == scrub.total_optimizer_steps()
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == trainer.global_step  # stepped per step
    assert "train/l1" in trainer.callback_metrics  # ℓ1 applies under manual optimisation too


# --- SKU ---------------------------------------------------------------------------------------
def test_sku_returns_the_negated_task_vector(make_cfg, tiny) -> None:
    sku = _method(make_cfg, tiny, "sku", "method.negation_scale=0.5")
    _trainer(fast_dev_run=2).fit(sku, _loader(tiny, sku.streams))
    assert bool(sku.negated)
    base = {n: p.detach().clone() for n, p in tiny["model"].named_parameters()}  # θ₀
    # Δ learned in stage 1: undo the negation on a copy and read each LoRA layer's delta
    fitted = copy.deepcopy(sku)
    fitted._scale_task_vector(-1 / 0.5)
    deltas = {
        n: m.get_delta_weight("default")
        for n, m in fitted.model.named_modules()
        if hasattr(m, "get_delta_weight")
    }
    assert deltas and any(d.abs().sum() > 0 for d in deltas.values())
    merged = copy.deepcopy(sku.unlearned_model()).merge_and_unload()
    for name, delta in deltas.items():
        key = name.removeprefix("base_model.model.") + ".weight"
        expected = base[key] - 0.5 * delta  # θ₀ − α·Δ
        torch.testing.assert_close(merged.get_parameter(key), expected)


def test_sku_full_parameter_negation(make_cfg, tiny) -> None:
    sku = _method(make_cfg, tiny, "sku", "method.lora=false", "method.negation_scale=2.0", lr=1e-3)
    theta0 = {n: p.detach().clone() for n, p in sku.model.named_parameters()}
    _trainer(fast_dev_run=1).fit(sku, _loader(tiny, sku.streams))
    sku._scale_task_vector(-1 / 2.0)  # back to the fitted θ
    fitted = {n: p.detach().clone() for n, p in sku.model.named_parameters()}
    sku._scale_task_vector(-2.0)
    for n, p in sku.model.named_parameters():
        torch.testing.assert_close(p, theta0[n] - 2.0 * (fitted[n] - theta0[n]))
    assert any(not torch.equal(fitted[n], theta0[n]) for n in theta0)


# --- RMU ---------------------------------------------------------------------------------------
def test_rmu_direction_is_a_seeded_unit_buffer(make_cfg, tiny) -> None:
    a, b = _method(make_cfg, tiny, "rmu", "seed=3"), _method(make_cfg, tiny, "rmu", "seed=3")
    c = _method(make_cfg, tiny, "rmu", "seed=4")
    assert a.layer == 0 and a.direction.norm().item() == pytest.approx(1.0)  # layers[0], 0-based
    assert torch.equal(a.direction, b.direction) and not torch.equal(a.direction, c.direction)
    assert "direction" in dict(a.named_buffers())
    with pytest.raises(ValueError, match="outside 0..1"):
        type(a)(copy.deepcopy(tiny["model"]), layer=2)


def test_rmu_auto_steering_coefficient(make_cfg, tiny) -> None:
    rmu = _method(make_cfg, tiny, "rmu", "method.auto_scale=4.0")
    assert torch.isnan(rmu.steering_coeff)
    batch = next(iter(_loader(tiny, rmu.streams)))
    loss, parts = rmu.compute_loss(batch)
    forget = batch["forget"]
    h0 = rmu.reference_forward(forget, output_hidden_states=True).hidden_states[1]  # output of layers[0]
    mask = forget["labels"] != IGNORE_INDEX  # the answer tokens' own positions
    assert rmu.steering_coeff.item() == pytest.approx(4.0 * h0.norm(dim=-1)[mask].mean().item(), rel=1e-5)
    # at θ = θ₀ the retain term is 0 and the forget term is the distance to c·u (mean over the hidden size)
    expected = losses.masked_sq_distance(h0, rmu.steering_coeff * rmu.direction.expand_as(h0), mask)
    assert parts["retain_distance"].item() == 0.0
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    fixed = _method(make_cfg, tiny, "rmu", "method.steering_coeff=300")
    fixed.compute_loss(batch)
    assert fixed.steering_coeff.item() == 300.0


def test_dpo_shared_prefix_pair_equals_separate_rows(make_cfg, tiny) -> None:
    """DPO's rejected (forget) and chosen (IDK) rows ask one prompt: scored from one prefix pass per network,
    the loss, its parts and the gradients equal the separate rows' (benchmark.md §5)."""
    dpo = _method(make_cfg, tiny, "dpo")
    assert dpo.prompt_pair == ("forget", "idk")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in dpo.model.named_parameters():
            if "lora_B" in n:  # a student away from the reference, so that every term is non-trivial
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    data = PairedStreams(tiny["forget"][:4], tiny["encoder"], ("forget", "idk"), (), tiny["idk"], seed=0)
    loader = DataLoader(
        data, batch_size=4, collate_fn=StreamCollator(tiny["encoder"].pad_id, dpo.prompt_pair)
    )
    batch = next(iter(loader))
    results = {}
    for name, b in (("shared", batch), ("separate", {k: v for k, v in batch.items() if k != "pair"})):
        dpo.zero_grad()
        loss, parts = dpo.compute_loss(b)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in dpo.model.named_parameters() if p.grad is not None}
        results[name] = (loss.item(), {k: v.item() for k, v in parts.items()}, grads)
    (loss_a, parts_a, grads_a), (loss_b, parts_b, grads_b) = results["shared"], results["separate"]
    assert loss_a == pytest.approx(loss_b, rel=1e-5) and parts_a == pytest.approx(parts_b, rel=1e-5)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for n in grads_a:  # float32 sums in another order: compare each gradient as a whole
        error = (grads_a[n] - grads_b[n]).norm() / grads_b[n].norm().clamp_min(1e-12)
        assert error < 1e-4, (n, error.item())
