"""Simulated users: JSON populations, accept or edit into the latent style, word-level cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.text import word_levenshtein
from core.world.detectors import contains_fact, detect_style
from core.world.renderer import kept_facts, render
from core.world.simulated_users import SimulatedUser, load_population, parse_user
from core.world.sources import SOURCE_NAMES, make_context
from core.world.styles import default_style, full_style


def _user(**preferences: dict[str, str]) -> SimulatedUser:
    return SimulatedUser("u", "test user", preferences)


def test_default_population_loads_with_a_preference_per_source() -> None:
    users = load_population()
    assert len(users) >= 5
    assert len({u.user_id for u in users}) == len(users)
    prelude = next(u for u in users if u.user_id == "prelude")
    assert set(prelude.preferences) == set(SOURCE_NAMES)
    assert prelude.latent_style("wiki") == {"length": "short", "format": "bullets"}


def test_a_matching_output_is_accepted_at_no_cost() -> None:
    context = make_context("news", 4)
    user = _user(news={"format": "bullets", "emoji": "yes"})
    output = render(context, "summarize", {"format": "bullets", "emoji": "yes", "tone": "casual"})
    response = user.respond(context, "summarize", output)
    assert response.accepted
    assert response.edited == output
    assert response.cost == 0


def test_a_mismatching_output_is_edited_into_the_latent_style() -> None:
    context = make_context("paper", 9)
    latent = {"length": "short", "emoji": "yes", "question": "yes"}
    user = _user(paper=latent)
    output = render(context, "email", {"tone": "casual", "length": "long"})
    response = user.respond(context, "email", output)
    assert not response.accepted
    assert response.cost == word_levenshtein(output, response.edited) > 0
    detected = detect_style(response.edited)
    assert {k: detected[k] for k in latent} == latent
    assert detected["tone"] == "casual"  # what the user does not care about stays as it was
    assert all(contains_fact(response.edited, f) for f in kept_facts(context, detected))
    assert user.respond(context, "email", response.edited).accepted


def test_an_output_missing_facts_is_edited_even_in_the_right_style() -> None:
    context = make_context("review", 1)
    user = _user(review={"format": "prose"})
    output = render(context, "summarize").replace(context.facts[0].value, "someone")
    response = user.respond(context, "summarize", output)
    assert not response.accepted
    assert response.edited == render(context, "summarize")
    assert response.cost == 2  # "someone" -> the two words of the reviewer's name


def test_a_source_without_preference_accepts_any_style() -> None:
    context = make_context("forum", 2)
    output = render(context, "summarize", {"emoji": "yes", "greeting": "yes"})
    assert _user().respond(context, "summarize", output).accepted
    assert full_style(_user().latent_style("forum")) == default_style()


def test_a_new_population_is_only_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "pop.json"
    users = [{"id": "zoe", "preferences": {"meeting": "brief, formal", "wiki": {"emoji": "yes"}}}]
    path.write_text(json.dumps({"name": "tiny", "users": users}))
    (zoe,) = load_population(path)
    assert zoe.latent_style("meeting") == {"length": "short", "tone": "formal"}
    assert zoe.latent_style("wiki") == {"emoji": "yes"}


@pytest.mark.parametrize(
    "data",
    [
        {"id": "a", "preferences": {"news": "brief and sparkly"}},
        {"id": "b", "preferences": {"blog": "brief"}},
        {"id": "c", "preferences": {"news": {"length": "huge"}}},
    ],
)
def test_invalid_users_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        parse_user(data)


def test_a_change_gives_the_whole_new_preference_map_from_its_round_on() -> None:
    user = parse_user(
        {
            "id": "shifter",
            "preferences": {"news": "bullet points", "wiki": "brief"},
            "changes": [
                {"at_round": 5, "preferences": {"news": "prose"}},
                {"at_round": 9, "preferences": {"news": {"emoji": "yes"}}},
            ],
        }
    )
    assert [c.at_round for c in user.changes] == [5, 9]
    assert user.at_round(0).latent_style("news") == {"format": "bullets"}
    assert user.at_round(4).latent_style("wiki") == {"length": "short"}
    assert user.at_round(5).latent_style("news") == {"format": "prose"}
    assert user.at_round(5).latent_style("wiki") == {}  # the whole map changed, not one source
    assert user.at_round(8).at_round(9).latent_style("news") == {"emoji": "yes"}

    context = make_context("news", 2)
    bullets = render(context, "summarize", {"format": "bullets"})
    assert user.at_round(4).respond(context, "summarize", bullets).accepted
    judged_later = user.at_round(5).respond(context, "summarize", bullets)
    assert not judged_later.accepted and judged_later.cost > 0
    assert detect_style(judged_later.edited)["format"] == "prose"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"at_round": 3}, "changes must be a list"),
        ([{"at_round": 3}], "exactly 'at_round' and 'preferences'"),
        ([{"at_round": "3", "preferences": {}}], "at_round must be an integer"),
        ([{"at_round": 0, "preferences": {}}], "at_round must be an integer ≥ 1"),
        ([{"at_round": 4, "preferences": {}}, {"at_round": 4, "preferences": {}}], "greater"),
        ([{"at_round": 4, "preferences": {"blog": "brief"}}], r"changes\[0\].preferences"),
        ([{"at_round": 4, "preferences": {"news": "sparkly"}}], "no attribute for"),
        ([{"at_round": 4, "preferences": {"news": 7}}], "give a phrase or an object"),
    ],
)
def test_bad_changes_are_rejected_with_a_message(changes: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_user({"id": "x", "preferences": {}, "changes": changes})


def test_a_population_file_with_changes_loads(tmp_path: Path) -> None:
    path = tmp_path / "pop.json"
    person = {"id": "p", "preferences": {"news": "bullet points"}}
    person["changes"] = [{"at_round": 2, "preferences": {"news": "prose"}}]
    path.write_text(json.dumps({"name": "t", "users": [person]}))
    (user,) = load_population(path)
    assert user.at_round(2).latent_style("news") == {"format": "prose"}
    path.write_text(json.dumps({"name": "t"}))
    with pytest.raises(ValueError, match="'users' list"):
        load_population(path)
