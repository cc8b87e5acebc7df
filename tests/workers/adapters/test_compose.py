"""Composition is exact: composed logits equal a model whose weights hold the explicit sum."""

from __future__ import annotations

import pytest
import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from transformers import LlamaForCausalLM

from tests.workers.adapters.helpers import tiny_llama, with_random_adapters
from workers.adapters.compose import Component, compose, preference_vector


def explicit_model(model: PeftModel, weights: dict[str, float]) -> LlamaForCausalLM:
    """A plain Llama whose linear weights are W + Σ w_k s_k B_k A_k, computed by hand."""
    plain = tiny_llama()
    state = plain.state_dict()
    for module_name, module in model.base_model.model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        delta = torch.zeros_like(module.base_layer.weight)
        for adapter, w in weights.items():
            a, b = module.lora_A[adapter].weight, module.lora_B[adapter].weight
            delta += w * module.scaling[adapter] * (b @ a)
        state[f"{module_name}.weight"] = module.base_layer.weight.detach() + delta.detach()
    plain.load_state_dict(state)
    return plain.eval()


@pytest.fixture
def tokens() -> torch.Tensor:
    return torch.randint(0, 97, (3, 12), generator=torch.Generator().manual_seed(1))


def test_user_adapter_plus_weighted_vectors_is_exact(tokens):
    model = with_random_adapters({"user": 4, "p_pos": 2, "p_neg": 2, "q_pos": 3, "q_neg": 3})
    preference_vector(model, "p_pos", "p_neg", "phi_p")
    preference_vector(model, "q_pos", "q_neg", "phi_q")
    eta_p, eta_q = 0.7, -1.5
    name = compose(
        model,
        [Component("user", 1.0), Component("phi_p", eta_p), Component("phi_q", eta_q)],
        "composed",
    )
    model.set_adapter(name)
    with torch.no_grad():
        composed = model(tokens).logits
        expected = explicit_model(
            model,
            {"user": 1.0, "p_pos": eta_p, "p_neg": -eta_p, "q_pos": eta_q, "q_neg": -eta_q},
        )(tokens).logits
    assert (composed - expected).abs().max().item() < 1e-4
    # and the composition really moved the model away from the base
    with torch.no_grad(), model.disable_adapter():
        base = model(tokens).logits
    assert (composed - base).abs().max().item() > 1e-2


def test_zero_weights_are_dropped_and_all_zero_is_the_base(tokens):
    model = with_random_adapters({"user": 4, "v_pos": 2, "v_neg": 2})
    preference_vector(model, "v_pos", "v_neg", "phi")
    assert compose(model, [Component("phi", 0.0)], "composed") is None
    name = compose(model, [Component("user", 1.0), Component("phi", 0.0)], "composed")
    assert model.peft_config[name].r == 4


def test_recomposing_replaces_the_previous_composition(tokens):
    model = with_random_adapters({"user": 4, "v_pos": 2, "v_neg": 2})
    preference_vector(model, "v_pos", "v_neg", "phi")
    compose(model, [Component("phi", 1.0)], "composed")
    compose(model, [Component("phi", 2.0), Component("user", 1.0)], "composed")
    model.set_adapter("composed")
    with torch.no_grad():
        composed = model(tokens).logits
        expected = explicit_model(model, {"user": 1.0, "v_pos": 2.0, "v_neg": -2.0})(tokens).logits
    assert (composed - expected).abs().max().item() < 1e-4


def test_unknown_adapter_is_a_clear_error():
    model = with_random_adapters({"user": 4})
    with pytest.raises(KeyError, match="not loaded"):
        compose(model, [Component("nope", 1.0)], "composed")
