"""Simulated users (the PRELUDE protocol): a latent style preference per context source.

A user accepts an output whose detected style matches its latent preference for the context's
source and which keeps the facts that style keeps; otherwise it edits the output into its latent
style, keeping the content (the attributes it has no preference on stay as the output had them).
The cost of a round is the word-level Levenshtein distance between the output and the edit.

Populations are JSON files, so a new population needs no code::

    {"name": "...", "users": [{"id": "ana", "description": "...",
      "preferences": {"news": "brief, casual, with emojis", "wiki": {"format": "bullets"}}}]}

A preference is a phrase (every word of it must map to an attribute) or a partial style; a source a
user leaves out is one where any style suits them. A user may change their mind: optional
``"changes": [{"at_round": 120, "preferences": {...}}]`` each give the whole new preference map
(in the same form) from that round on (rounds count from 0; ``at_round`` strictly increasing), so
a learner can be measured on how fast it follows a person who changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
class PreferenceChange:
    """From round ``at_round`` on, the user's whole preference map is ``preferences``."""

    at_round: int
    preferences: Mapping[str, Style]


@dataclass(frozen=True)
class SimulatedUser:
    """A user with a latent (partial) style per source, and the changes of it over the rounds."""

    user_id: str
    description: str = ""
    preferences: Mapping[str, Style] = field(default_factory=dict)
    changes: tuple[PreferenceChange, ...] = ()

    def at_round(self, round_number: int) -> SimulatedUser:
        """The user as they judge at ``round_number`` (from 0): the preferences of the latest
        change at or before it, else the initial ones. Changes are kept, so it composes."""
        preferences = self.preferences
        for change in self.changes:
            if change.at_round <= round_number:
                preferences = change.preferences
        return replace(self, preferences=preferences)

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
    if not isinstance(preference, Mapping):
        raise ValueError(f"preference {preference!r}: give a phrase or an object of attributes")
    return validate_style(preference)


def _preference_map(user_id: object, raw: object, where: str) -> dict[str, Style]:
    """A ``preferences`` object: known sources only, each a phrase or a partial style."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"user {user_id!r}: {where} must be an object")
    unknown = set(raw) - set(SOURCE_NAMES)
    if unknown:
        raise ValueError(
            f"user {user_id!r}: {where}: unknown sources {sorted(unknown)} "
            f"(the sources are {', '.join(SOURCE_NAMES)})"
        )
    try:
        return {source: parse_latent(value) for source, value in raw.items()}
    except ValueError as err:
        raise ValueError(f"user {user_id!r}: {where}: {err}") from None


def _changes(user_id: object, raw: object) -> tuple[PreferenceChange, ...]:
    """The ``changes`` list: objects with an integer ``at_round`` (≥ 1, strictly increasing)
    and a ``preferences`` map."""
    if not isinstance(raw, list):
        raise ValueError(f"user {user_id!r}: changes must be a list")
    changes: list[PreferenceChange] = []
    for i, item in enumerate(raw):
        where = f"changes[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"at_round", "preferences"}:
            raise ValueError(
                f"user {user_id!r}: {where} must be an object with exactly 'at_round' and "
                "'preferences'"
            )
        at = item["at_round"]
        if not isinstance(at, int) or isinstance(at, bool) or at < 1:
            raise ValueError(f"user {user_id!r}: {where}.at_round must be an integer ≥ 1")
        if changes and at <= changes[-1].at_round:
            raise ValueError(
                f"user {user_id!r}: {where}.at_round {at} must be greater than the previous "
                f"change's ({changes[-1].at_round})"
            )
        preferences = _preference_map(user_id, item["preferences"], f"{where}.preferences")
        changes.append(PreferenceChange(at, preferences))
    return tuple(changes)


def parse_user(data: Mapping[str, object]) -> SimulatedUser:
    """One user from its JSON object (keys ``id``, ``preferences``, optional ``description``
    and ``changes``); a ValueError names the user and what is wrong."""
    if not isinstance(data, Mapping) or "id" not in data:
        raise ValueError("every user must be an object with an 'id'")
    user_id = data["id"]
    preferences = _preference_map(user_id, data.get("preferences", {}), "preferences")
    changes = _changes(user_id, data.get("changes", []))
    return SimulatedUser(str(user_id), str(data.get("description", "")), preferences, changes)


def load_population(path: Path | str | None = None) -> list[SimulatedUser]:
    """The users of a population file (the default population when ``path`` is None)."""
    data = json.loads(Path(path or DEFAULT_POPULATION).read_text(encoding="utf-8"))
    if not isinstance(data, Mapping) or not isinstance(data.get("users"), list):
        raise ValueError("a population is an object with a 'users' list")
    users = [parse_user(user) for user in data["users"]]
    ids = [u.user_id for u in users]
    if len(set(ids)) != len(ids):
        raise ValueError("user ids in a population must be unique")
    return users
