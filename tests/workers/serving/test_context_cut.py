"""A last user message too long for the model's window is cut after a whole sentence."""

from __future__ import annotations

from collections.abc import Sequence

from workers.serving.prompts import fit_to_window

INSTRUCTION = "Summarize the following text.\n"
TEXT = "One two three. Four five six. Seven eight nine. Ten eleven twelve."


def words(messages: Sequence[dict[str, str]]) -> list[int]:
    """A stand-in tokenizer: one id per word of all messages."""
    return [0] * sum(len(m["content"].split()) for m in messages)


def test_a_message_that_fits_is_left_whole() -> None:
    messages = [{"role": "user", "content": TEXT}]
    kept, ids, cut = fit_to_window(messages, words, lambda n: n <= 100, 100)
    assert kept == messages and len(ids) == 12 and cut is None


def test_the_cut_keeps_as_many_whole_sentences_as_fit_and_says_so() -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": TEXT}]
    kept, ids, cut = fit_to_window(messages, words, lambda n: n <= 9, 9)
    assert kept[1]["content"] == "One two three. Four five six." and kept[0] == messages[0]
    assert len(ids) == 8
    assert cut is not None and (cut.kept_sentences, cut.total_sentences) == (2, 4)
    assert "cut after sentence 2 of 4" in cut.as_dict()["message"]


def test_the_task_line_is_not_a_sentence_of_the_text() -> None:
    messages = [{"role": "user", "content": INSTRUCTION + TEXT + " Thirteen"}]
    kept, _, cut = fit_to_window(messages, words, lambda n: n <= 11, 11)
    assert kept[0]["content"] == INSTRUCTION + "One two three. Four five six."
    assert cut is not None and (cut.kept_sentences, cut.total_sentences) == (2, 5)


def test_a_first_sentence_too_long_on_its_own_is_left_for_the_caller_to_refuse() -> None:
    messages = [{"role": "user", "content": TEXT}]
    kept, ids, cut = fit_to_window(messages, words, lambda n: n <= 2, 2)
    assert kept == messages and len(ids) == 12 and cut is None
