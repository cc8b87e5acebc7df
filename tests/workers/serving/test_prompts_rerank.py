"""Prompts carry the persona and the CIPHER preference; n > 1 candidates are reranked."""

from __future__ import annotations

from core.prompting import build_instruction, build_prompt
from workers.serving import service
from workers.serving.prompts import UserContext, render_prompt, style_request


class StyleTokenizer:
    def get_vocab(self) -> dict[str, int]:
        return {"<response>": 0}


class ChatTokenizer:
    chat_template = "{{ messages }}"

    def __init__(self, system_ok: bool = True) -> None:
        self.system_ok = system_ok

    def get_vocab(self) -> dict[str, int]:
        return {}

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        if not self.system_ok and any(m["role"] == "system" for m in messages):
            raise ValueError("System role not supported")
        return " | ".join(f"{m['role']}: {m['content']}" for m in messages) + " | assistant:"


def test_style_model_reads_task_style_and_precedence():
    text = build_instruction("email", "Council approves tram.", "with emojis, casual", "news")
    task, context, tags = style_request(
        [{"role": "user", "content": text}],
        UserContext(persona="I like formal writing", preference="bullet points, brief, no emojis"),
    )
    assert task == "email" and context == "Council approves tram."
    # persona < memory < the request's own words
    assert tags == {"tone": "casual", "format": "bullets", "length": "short", "emoji": "yes"}


def test_style_model_prompt_for_a_plain_message():
    prompt = render_prompt(
        StyleTokenizer(),
        [{"role": "system", "content": "Write an email."}, {"role": "user", "content": "Facts."}],
        UserContext(preference="brief"),
    )
    assert prompt == build_prompt("email", "Facts.", {"length": "short"})


def test_chat_model_gets_persona_and_preference_in_the_system_prompt():
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    context = UserContext(persona="I teach primary school.", preference="brief, bullet points")
    prompt = render_prompt(ChatTokenizer(), messages, context)
    assert prompt.startswith("system: About the user:\nI teach primary school.")
    assert "The user's writing preference: brief, bullet points. Follow it.\n\nBe kind." in prompt
    assert prompt.endswith("user: Hi | assistant:")
    folded = render_prompt(ChatTokenizer(system_ok=False), messages, context)
    assert folded.startswith("user: About the user:") and folded.endswith("Hi | assistant:")
    assert render_prompt(ChatTokenizer(), [messages[1]], UserContext()) == "user: Hi | assistant:"


def test_rerank_orders_by_the_injected_scorer():
    candidates = ["a", "b", "c"]
    order, scores = service.rank(1, "p", candidates, lambda uid, prompt, texts: [0.1, 0.9, 0.5])
    assert order == [1, 2, 0] and scores == [0.1, 0.9, 0.5]


def test_rerank_keeps_the_order_without_a_reward():
    candidates = ["a", "b", "c"]
    assert service.rank(1, "p", candidates, lambda *args: None) == ([0, 1, 2], None)

    def broken(*args):
        raise RuntimeError("reward model missing")

    assert service.rank(1, "p", candidates, broken) == ([0, 1, 2], None)
    assert service.rank(1, "p", candidates, lambda *args: [1.0]) == ([0, 1, 2], None)


def test_a_persons_own_request_around_the_text_is_read_not_restyled():
    text = "The council approved a tram. It starts in spring."
    asks = {
        f"Summarize this:\n\n{text}": "summarize",
        f"Summarize this: {text}": "summarize",
        f"Can you turn this into an email for my team?\n{text}": "email",
        f"{text}\n\nTL;DR?": "summarize",
    }
    for message, task in asks.items():
        got = style_request([{"role": "user", "content": message}], UserContext())
        assert got[:2] == (task, text), message
    styled = "Please rewrite this in bullet points, casual.\n\n" + text
    assert style_request([{"role": "user", "content": styled}], UserContext())[2] == {
        "format": "bullets", "tone": "casual"
    }  # fmt: skip
    # a text's own first line stays the text's: a label with its words, a question, an order
    for kept in ("Key points: the office is closed.\nStaff work from home.",
                 "Can you come to the meeting?\nWe need your input.",
                 "Write the report by Friday.\nThe team meets Monday.",
                 "Note: the office is closed. Staff work from home."):  # fmt: skip
        assert style_request([{"role": "user", "content": kept}], UserContext())[1] == kept
