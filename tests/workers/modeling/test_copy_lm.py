"""The style model's architecture: a Llama whose next token mixes its own distribution with a
pointer that copies what followed a matching earlier position."""

from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model

from workers.modeling.copy_lm import CopyLlamaConfig, CopyLlamaForCausalLM


def tiny(seed: int = 0) -> CopyLlamaForCausalLM:
    torch.manual_seed(seed)
    config = CopyLlamaConfig(
        vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128, copy_dim=16,
        answer_token_id=20,
    )  # fmt: skip
    return CopyLlamaForCausalLM(config).eval()


IDS = torch.tensor([[5, 6, 7, 8, 9, 10, 5, 6, 7, 8, 11, 12, 20, 5, 6, 7, 8, 9, 5, 6, 7]])


def test_logits_are_a_normalized_distribution() -> None:
    with torch.no_grad():
        logits = tiny()(input_ids=IDS, attention_mask=torch.ones_like(IDS)).logits
    assert torch.allclose(logits.exp().sum(-1), torch.ones(IDS.shape), atol=1e-4)


def test_decoding_with_a_cache_gives_the_same_distribution_as_a_full_pass() -> None:
    model = tiny()
    mask = torch.ones_like(IDS)
    with torch.no_grad():
        full = model(input_ids=IDS, attention_mask=mask).logits
        with torch.no_grad():  # every learned bonus in play
            model.copy_used_penalty.fill_(-3.0)
            model.copy_cursor_bonus.copy_(torch.tensor([-1.0, 2.0, 0.5, 0.2]))
        full = model(input_ids=IDS, attention_mask=mask).logits
        out = model(input_ids=IDS[:, :6], attention_mask=mask[:, :6], use_cache=True)
        steps = [out.logits[:, -1]]
        for t in range(6, IDS.shape[1]):
            out = model(input_ids=IDS[:, t : t + 1], attention_mask=mask[:, : t + 1],
                        cache=out.cache, use_cache=True)  # fmt: skip
            steps.append(out.logits[:, -1])
    assert torch.allclose(torch.stack(steps, 1), full[:, 5:], atol=1e-4)


def test_the_pointer_puts_weight_on_the_token_that_followed_a_match() -> None:
    model = tiny()
    with torch.no_grad():
        model.copy_gate.bias.fill_(-20.0)  # all copy
        model.copy_gate.weight.zero_()
        logits = model(input_ids=IDS, attention_mask=torch.ones_like(IDS)).logits
    earlier = set(IDS[0, 1:].tolist())
    probable = logits[0, -1].exp()
    assert probable[sorted(earlier)].sum() > 0.999  # only tokens that followed some position
    assert probable[[1, 2, 3]].sum() < 1e-6


def test_training_log_probs_match_the_forward_pass() -> None:
    model = tiny()
    select = torch.zeros_like(IDS, dtype=torch.bool)
    select[0, 4:-1] = True
    targets = IDS[0, 5:]
    with torch.no_grad():
        chosen = model.target_log_probs(IDS, torch.ones_like(IDS), select, targets)
        full = model(input_ids=IDS, attention_mask=torch.ones_like(IDS)).logits
    assert torch.allclose(chosen, full[0, 4:-1].gather(-1, targets[:, None]).squeeze(-1), atol=1e-5)


def test_left_padding_does_not_change_a_row() -> None:
    model = tiny()
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), IDS], dim=1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones_like(IDS)], dim=1)
    with torch.no_grad():
        alone = model(input_ids=IDS, attention_mask=torch.ones_like(IDS)).logits[:, -1]
        with_pad = model(input_ids=padded, attention_mask=mask).logits[:, -1]
    assert torch.allclose(alone, with_pad, atol=1e-4)


def test_peft_puts_lora_on_the_pointer_too_and_it_trains() -> None:
    model = get_peft_model(tiny(), LoraConfig(r=4, target_modules="all-linear"))
    names = {n for n, _ in model.named_modules()}
    assert any("copy_query.lora_A" in n for n in names)
    out = model(input_ids=IDS, attention_mask=torch.ones_like(IDS), labels=IDS)
    out.loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None for g in grads)


def test_coverage_marks_what_the_answer_already_wrote() -> None:
    from workers.modeling.copy_lm import Reading

    model = tiny()
    ids = torch.tensor([[5, 6, 7, 8, 9, 20, 5, 6, 7]])
    positions = torch.arange(ids.shape[1])
    earlier = torch.arange(8)[None, :] < positions[:, None]
    lengths = model._match_lengths(ids, positions) * earlier
    used, reading = model._coverage(ids, positions, lengths, Reading.start(1, 8, ids.device))
    # after the answer wrote "5 6 7" (copying positions 0-2), positions 0 and 1 (whose next
    # tokens 6 and 7 it wrote) are used; position 2 (next: 8) is still pending
    assert used[0, -1, :2].all() and not used[0, -1, 2:].any()
    assert reading.pending[0, 2] and not reading.pending[0, 3]


def test_the_reading_cursor_goes_on_after_the_last_confident_match() -> None:
    model = tiny()
    source = [5, 6, 7, 8, 9, 7, 12]  # "7" comes twice in the source
    ids = torch.tensor([[*source, 20, 5, 6, 7]])  # a separator, then a copy of "5 6 7"
    with torch.no_grad():
        model.copy_gate.weight.zero_()
        model.copy_gate.bias.fill_(-20.0)  # all copy
        model.copy_query.weight.zero_()  # no learned match: the alignment alone decides
        model.copy_match_weight.zero_()
        model.copy_cursor_bonus.copy_(torch.tensor([-5.0, 5.0, 0.0, 0.0]))
        last = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1].exp()
    assert last.argmax().item() == 8  # after "5 6 7" comes "8", not "12" (after the other "7")
    assert last[8] > 0.9
