"""Fit jobs train on prompts as the serving process writes them for the base model."""

from __future__ import annotations

from core.prompting import RESPONSE_TOKEN, build_instruction, build_prompt
from workers.adapters.jobs import model_prompt


class StyleVocab:
    """Just enough of the style model's tokenizer to be recognized as one (unit isolation)."""

    chat_template = None

    def get_vocab(self) -> dict[str, int]:
        return {RESPONSE_TOKEN: 0}


class PlainVocab(StyleVocab):
    def get_vocab(self) -> dict[str, int]:
        return {"hello": 0}


def test_a_stored_instruction_becomes_the_style_models_own_prompt():
    context = "Council votes to fund a park by the river."
    stored = build_instruction("email", context, "brief, bullet points", "news")
    assert model_prompt(StyleVocab(), stored) == build_prompt(
        "email", context, {"length": "short", "format": "bullets"}
    )


def test_a_model_without_chat_template_gets_the_plain_turn_layout():
    assert model_prompt(PlainVocab(), "Summarize this.") == "User: Summarize this.\n\nAssistant:"
