"""The style model's architecture: a Llama whose next token mixes its own distribution with a
pointer that copies what followed a matching earlier position."""

from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model

from workers.modeling.copy_config import CopyLlamaConfig
from workers.modeling.copy_lm import CopyLlamaForCausalLM
from workers.modeling.copy_reading import (
    Reading,
    coverage,
    cut_points,
    guard_repeats,
    guard_stutter,
    match_lengths,
    progress,
)


def tiny(seed: int = 0, cut: bool = False, special: tuple[int, ...] = ()) -> CopyLlamaForCausalLM:
    torch.manual_seed(seed)
    config = CopyLlamaConfig(
        vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128, copy_dim=16,
        answer_token_id=20, boundary_token_ids=[9, 12], progress_buckets=4,
        lower_token_ids=[*range(40), *range(5, 15)],  # 40-49 are 5-14 "in upper case"
        context_token_id=5,
        closing_token_ids=[12],
        sentence_tokens={"word_start": [6, 7, 8, 13, 14], "clause": [11], "comma": [10],
                         "conjunction": [13]},
        long_sentence_words=3, min_piece_words=2, cut_long_sentences=cut,
        special_token_ids=list(special),
    )  # fmt: skip
    return CopyLlamaForCausalLM(config).eval()


IDS = torch.tensor([[5, 6, 7, 8, 9, 10, 5, 6, 7, 8, 11, 12, 20, 5, 6, 7, 8, 9, 5, 6, 7]])


def decode_stepwise(model: CopyLlamaForCausalLM, ids: torch.Tensor, prefix: int) -> torch.Tensor:
    """The next-token distributions after ``prefix`` tokens and after each later one, decoded
    one token at a time with the cache (to compare with one full pass from ``prefix - 1`` on)."""
    mask = torch.ones_like(ids)
    out = model(input_ids=ids[:, :prefix], attention_mask=mask[:, :prefix], use_cache=True)
    steps = [out.logits[:, -1]]
    for t in range(prefix, ids.shape[1]):
        out = model(input_ids=ids[:, t : t + 1], attention_mask=mask[:, : t + 1],
                    cache=out.cache, use_cache=True)  # fmt: skip
        steps.append(out.logits[:, -1])
    return torch.stack(steps, 1)


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
            model.copy_steer.bias.copy_(torch.tensor([0.5, 1.5]))
            model.copy_progress.weight.normal_()
            model.copy_case.bias.fill_(0.0)
        full = model(input_ids=IDS, attention_mask=mask).logits
        steps = decode_stepwise(model, IDS, 6)
    assert torch.allclose(steps, full[:, 5:], atol=1e-4)


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
    model = tiny()
    ids = torch.tensor([[5, 6, 7, 8, 9, 20, 5, 6, 7]])
    positions = torch.arange(ids.shape[1])
    earlier = torch.arange(8)[None, :] < positions[:, None]
    lengths = match_lengths(ids, positions, model.config.copy_match) * earlier
    used, reading = coverage(ids, positions, lengths, Reading.start(1, 8, ids.device), 20)
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


def test_progress_counts_the_sentence_ends_left_after_the_cursor() -> None:
    model = tiny()
    # the prompt: two "sentences" ending in 9 and 12, then 14; the answer (after 20) copies "5 6 7"
    ids = torch.tensor([[5, 6, 7, 9, 10, 11, 12, 13, 14, 20, 5, 6, 7]])
    answer = torch.tensor([10, 12])  # two queries in the answer
    cursors = torch.tensor([[-1, 2]])  # before any match, and after copying up to position 2
    left, next_unit = progress(ids, answer, cursors, model.tables)
    assert (left % 4).tolist() == [[2, 2]]  # both sentence ends are still ahead
    assert next_unit[0, 1].item() == 3  # pointing at the first end copies the next sentence
    left, _ = progress(ids, answer, torch.tensor([[4, 8]]), model.tables)
    assert (left % 4).tolist() == [[1, 0]]
    left, _ = progress(ids, torch.tensor([2, 5]), torch.tensor([[-1, -1]]), model.tables)
    assert (left % 4).tolist() == [[0, 1]]  # in the prompt, only what was read so far counts


def test_only_a_match_in_the_prompt_moves_the_reading_cursor() -> None:
    model = tiny()
    # three sentences (ends: 9), then a list that copies the first two: "- 6 7 9 \n - 13 14 9 \n -"
    # (30: a line break, 31: the list marker); the third "9 \n -" matches the answer's own first
    ids = torch.tensor(
        [[5, 6, 7, 9, 13, 14, 9, 8, 6, 9, 20, 31, 6, 7, 9, 30, 31, 13, 14, 9, 30, 31]]
    )
    positions = torch.arange(ids.shape[1])
    start = Reading.start(1, ids.shape[1] - 1, ids.device)
    mask = torch.ones_like(ids, dtype=torch.bool)
    left = {}
    for reads_prompt in (False, True):
        model.config.cursor_reads_prompt = reads_prompt
        found = model._alignment(ids, mask, positions, start)
        assert found.progress is not None
        left[reads_prompt] = int(found.progress[0, -1]) % model.config.progress_buckets
    assert left == {True: 1, False: 0}  # one sentence is left; before v5 the list's own
    # ". \n -" moved the cursor into the answer, where none is


def test_the_piece_state_says_where_a_long_sentence_may_be_cut() -> None:
    model = tiny()  # sentences of more than 3 words are long; a piece needs 2 words or more
    # the context: "6 7 8 , and 14 6 7 ." (7 words), then the answer
    ids = torch.tensor([[5, 6, 7, 8, 10, 13, 14, 6, 7, 9, 20, 6, 7]])
    answer = torch.tensor([11, 12])
    buckets, _ = progress(ids, answer, torch.tensor([[3, 7]]), model.tables)
    states = (buckets // model.config.progress_buckets).tolist()
    # after "8": long, 4 words left, ", and" next (7); after the second "6": long, 1 left (1)
    assert states == [[7, 1]]


def test_a_model_without_the_progress_feature_still_loads_and_runs() -> None:
    config = CopyLlamaConfig(
        vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64, copy_dim=16,
        answer_token_id=20,
    )  # fmt: skip
    model = CopyLlamaForCausalLM(config).eval()
    assert model.copy_progress is None
    with torch.no_grad():
        logits = model(input_ids=IDS, attention_mask=torch.ones_like(IDS)).logits
    assert torch.allclose(logits.exp().sum(-1), torch.ones(IDS.shape), atol=1e-4)


def test_the_pointer_reads_case_blind_and_may_write_the_lower_case_twin() -> None:
    model = tiny()
    ids = torch.tensor([[40, 6, 7, 8, 12, 20, 5]])  # reads "Five six seven", has written "five"
    with torch.no_grad():
        model.copy_gate.weight.zero_()
        model.copy_gate.bias.fill_(-20.0)  # all copy
        model.copy_query.weight.zero_()
        model.copy_cursor_bonus.zero_()
        model.copy_match_weight.fill_(10.0)
        probs = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1].exp()
        assert probs[6] > 0.9  # "five" matched "Five": what followed it comes next
        model.copy_case.bias.fill_(20.0)  # write copied words in lower case
        first = model(input_ids=ids[:, :6], attention_mask=torch.ones_like(ids[:, :6]))
        probs = first.logits[0, -1].exp()
    assert probs[5] > probs[40]
    select = torch.zeros_like(ids, dtype=torch.bool)
    select[0, 5] = True
    with torch.no_grad():
        trained = model.target_log_probs(ids, torch.ones_like(ids), select, torch.tensor([5]))
    assert torch.allclose(trained, first.logits[0, -1, 5:6], atol=1e-5)


def test_a_saved_model_loads_with_every_table_and_gives_the_same_distribution(tmp_path) -> None:
    from transformers import AutoModelForCausalLM

    model = tiny()
    with torch.no_grad():
        model.copy_steer.bias.copy_(torch.tensor([0.5, 1.5]))
        model.copy_progress.weight.normal_()
        model.copy_case.bias.fill_(0.0)
        before = model(input_ids=IDS, attention_mask=torch.ones_like(IDS)).logits
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        after = loaded(input_ids=IDS, attention_mask=torch.ones_like(IDS)).logits
    assert torch.allclose(before, after, atol=1e-5)


# the context "6 7 8 , and 14 6 7 ." (7 words: long) is cut after "8"; then the answer
CUT = torch.tensor([[5, 6, 7, 8, 10, 13, 14, 6, 7, 9, 20, 6, 7, 8, 12, 14, 6]])


def test_cut_points_follow_the_renderers_rule_for_long_sentences() -> None:
    tables = tiny(cut=True).tables
    heads, breaks = cut_points(CUT, tables)
    assert heads[0].nonzero().flatten().tolist() == [3]  # "8" ends the head
    assert breaks[0].nonzero().flatten().tolist() == [5]  # "and" ends the break
    short = torch.tensor([[5, 6, 7, 10, 13, 14, 9, 20, 6]])  # 3 words: not long, not cut
    assert not cut_points(short, tables)[0].any()
    tail = torch.tensor([[5, 6, 7, 8, 10, 13, 14, 9, 20, 6]])  # 1 word after the break: no cut
    assert not cut_points(tail, tables)[0].any()


def test_a_cut_is_a_sentence_end_to_the_pointer() -> None:
    model = tiny(cut=True)
    _, breaks = cut_points(CUT, model.tables)
    _, next_unit = progress(CUT, torch.tensor([13]), torch.tensor([[3]]), model.tables, breaks)
    assert next_unit[0, 0].item() == 5  # pointing at "and" copies the next piece's first word
    with torch.no_grad():  # all copy, the cursor right after "8": the pointer ends the head
        model.copy_gate.bias.fill_(-20.0)
        model.copy_gate.weight.zero_()
        model.copy_cursor_bonus.copy_(torch.tensor([-20.0, 20.0, 0.0, 0.0]))
        cut = model(input_ids=CUT[:, :14], attention_mask=torch.ones_like(CUT[:, :14])).logits
        plain = tiny()
        plain.load_state_dict(model.state_dict())
        whole = plain(input_ids=CUT[:, :14], attention_mask=torch.ones_like(CUT[:, :14])).logits
    assert whole[0, -1].exp()[10] > 0.9  # without cuts the pointer copies ","
    assert cut[0, -1].exp()[12] > 0.9  # with them it writes the closing mark


def test_with_cuts_decoding_and_training_agree_with_a_full_pass() -> None:
    model = tiny(cut=True)
    mask = torch.ones_like(CUT)
    with torch.no_grad():
        model.copy_steer.bias.copy_(torch.tensor([0.5, 1.5]))
        model.copy_progress.weight.normal_()
        full = model(input_ids=CUT, attention_mask=mask).logits
        steps = decode_stepwise(model, CUT, 11)
        select = torch.zeros_like(CUT, dtype=torch.bool)
        select[0, 10:-1] = True
        targets = CUT[0, 11:]
        chosen = model.target_log_probs(CUT, mask, select, targets)
    assert torch.allclose(steps, full[:, 10:], atol=1e-4)
    assert torch.allclose(
        chosen, full[0, 10:-1].gather(-1, targets[:, None]).squeeze(-1), atol=1e-5
    )


def _banned(written: list[int], list_items: bool) -> set[int]:
    """The tokens the repeat guard rules out after the answer ``written`` (answer token 20;
    with ``list_items``, 30 holds a line break and 31 is the list marker)."""
    log_probs = torch.zeros(1, 50)
    tables = (torch.tensor([30]), torch.tensor([31])) if list_items else None
    guard_repeats(torch.tensor([[5, 6, 20, *written]]), log_probs, 20, tables)
    return set(torch.isinf(log_probs[0]).nonzero().flatten().tolist())


def test_the_repeat_guard_stops_a_loop_but_not_a_lists_next_item() -> None:
    # 12 ".", 30 a line break, 31 "-", 32 "You": every item starts ". \n - You"
    items = [33, 7, 12, 30, 31, 32, 34, 8, 12, 30, 31, 32, 35, 9, 12, 30, 31]
    assert 32 in _banned(items, False)  # without the tables the third item's "You" was ruled out
    assert _banned(items, True) == set()
    loop = [6, 7, 8, 9, 6, 7, 8, 9, 6, 7, 8]  # the same four tokens a third time
    assert _banned(loop, True) == {9}
    again = [36, 30, 30, 31, 33, 7] * 3 + [36, 30]  # the answer written again and again
    assert _banned(again, True) == {30}  # its spans that start no item still count


def test_decoding_writes_no_word_three_times_in_a_row() -> None:
    words = torch.tensor([7, 8])  # the tokens that start a word; 12 is "."
    ids = torch.tensor([[20, 5, 7, 7], [20, 5, 12, 12], [20, 7, 8, 7], [20, 5, 5, 8]])
    log_probs = torch.zeros(4, 50)
    guard_stutter(ids, log_probs, words)
    assert torch.isinf(log_probs[0, 7])  # "that that": no third "that"
    assert not torch.isinf(log_probs[1:]).any()  # a mark twice, a word not twice in a row


def test_decoding_never_writes_a_special_token_but_the_end() -> None:
    # the prompt holds "6" then the marker 20; the answer has just written "6"
    ids = torch.tensor([[5, 6, 20, 7, 8, 12, 21, 6]])
    model = tiny(special=(0, 20, 21))  # the special tokens but the end (49 plays the end)
    with torch.no_grad():
        model.copy_gate.bias.fill_(-2.0)  # mostly copy
        model.copy_match_weight.fill_(10.0)  # the suffix match decides
        scored = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1]
        written = decode_stepwise(model, ids, ids.shape[1] - 1)[0, -1]  # decoding the last "6"
    assert scored[20].exp() > 0.5  # the model's own distribution copies the marker after "6"
    assert torch.isinf(written[[0, 20, 21]]).all()  # decoding rules it out
    kept = ~torch.isinf(written)
    assert kept[49] and kept.sum() == 47  # the end and every other token stay as they were
    assert torch.allclose(written[kept], scored[kept], atol=1e-4)
