"""Simulated users (the PRELUDE protocol): a latent style preference per context source.

A user accepts an output whose detected style matches its latent preference for the context's
source and which keeps the facts that style keeps; otherwise it edits the output into its latent
style, keeping the content (the attributes it has no preference on stay as the output had them).
The cost of a round is the word-level Levenshtein distance between the output and the edit.

Populations are JSON files, so a new population needs no code::

    {"name": "...", "users": [{"id": "ana", "description": "...",
      "preferences": {"news": "brief, casual, with emojis", "wiki": {"format": "bullets"}}}]}

A preference is a phrase (every word of it must map to an attribute) or a partial style; a source a
user leaves out is one where any style suits them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.text import word_levenshtein
from core.world.detectors import detect_style, fact_retention
from core.world.preferences import parse_preference
from core.world.renderer import kept_facts, render
from core.world.sources import SOURCE_NAMES, Context
from core.world.styles import Style, validate_style

DEFAULT_POPULATION = Path(__file__).parent / "populations" / "default.json"


@dataclass(frozen=True)
class UserResponse:
    """A user's reaction to one output: accepted or edited, the edited text, the edit cost."""

    accepted: bool
    edited: str
    cost: int


@dataclass(frozen=True)
class SimulatedUser:
    """A user with a latent (partial) style per source."""

    user_id: str
    description: str = ""
    preferences: Mapping[str, Style] = field(default_factory=dict)

    def latent_style(self, source: str) -> Style:
        """The user's latent preference for contexts of ``source`` (empty: no preference)."""
        return dict(self.preferences.get(source, {}))

    def target_style(self, context: Context, output: str) -> Style:
        """The style the user wants this output in: its own style, overridden by the latent one."""
        return {**detect_style(output), **self.latent_style(context.source)}

    def is_satisfied(self, context: Context, output: str) -> bool:
        """Whether the output has the latent style and keeps the facts that style keeps."""
        detected = detect_style(output)
        latent = self.latent_style(context.source)
        if any(detected[name] != value for name, value in latent.items()):
            return False
        facts = kept_facts(context, self.target_style(context, output))
        return fact_retention(output, facts) == 1.0

    def edit(self, context: Context, task: str, output: str) -> str:
        """The output rewritten in the user's target style, with the context's content."""
        return render(context, task, self.target_style(context, output))

    def respond(self, context: Context, task: str, output: str) -> UserResponse:
        """Accept the output, or edit it; the cost is the word-level edit distance."""
        if self.is_satisfied(context, output):
            return UserResponse(accepted=True, edited=output, cost=0)
        edited = self.edit(context, task, output)
        return UserResponse(accepted=False, edited=edited, cost=word_levenshtein(output, edited))


def parse_latent(preference: str | Mapping[str, str]) -> Style:
    """A latent preference from JSON: a phrase that must parse completely, or a partial style."""
    if isinstance(preference, str):
        parsed = parse_preference(preference)
        if parsed.unmatched:
            raise ValueError(f"preference {preference!r}: no attribute for {parsed.unmatched}")
        return parsed.style
    return validate_style(preference)


def parse_user(data: Mapping[str, object]) -> SimulatedUser:
    """One user from its JSON object (keys ``id``, ``preferences``, optional ``description``)."""
    raw = data.get("preferences", {})
    if not isinstance(raw, Mapping):
        raise ValueError(f"user {data.get('id')!r}: preferences must be an object")
    unknown = set(raw) - set(SOURCE_NAMES)
    if unknown:
        raise ValueError(f"user {data.get('id')!r}: unknown sources {sorted(unknown)}")
    preferences = {source: parse_latent(value) for source, value in raw.items()}
    return SimulatedUser(str(data["id"]), str(data.get("description", "")), preferences)


def load_population(path: Path | str | None = None) -> list[SimulatedUser]:
    """The users of a population file (the default population when ``path`` is None)."""
    data = json.loads(Path(path or DEFAULT_POPULATION).read_text(encoding="utf-8"))
    users = [parse_user(user) for user in data["users"]]
    ids = [u.user_id for u in users]
    if len(set(ids)) != len(ids):
        raise ValueError("user ids in a population must be unique")
    return users
