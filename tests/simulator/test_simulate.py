"""``simulate`` against a live test server with a real serving process (the tiny style model):
one person, an end user of a client app, plays a few rounds; every round is recorded, every
write Attune acknowledged is a row of that end user, an ``n=2`` round posts a comparison, a
change of preference switches how later answers are judged, memory learned from the edits
(Celery eager, so a memory entry exists when the edit's answer returns) shapes later answers,
and a run with memory turned off gets no memory ids.

The tiny model writes poor text whatever it is told (two training steps), so its cost does not
fall here; that memory conditions the later rounds is what this test can see of the loop.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from apps.accounts.models import User
from apps.accounts.services import create_client_app
from apps.feedback.models import Comparison, Edit, Interaction, Rating
from apps.memory.models import MemoryEntry
from core.world.detectors import detect_style
from simulator.run import Config, simulate, summary

ROUNDS, CHANGE_AT = 6, 3
PERSON = {
    "id": "reader",
    "preferences": {"news": "bullet points"},
    "changes": [{"at_round": CHANGE_AT, "preferences": {"news": "prose"}}],
}
ROW_MODELS = {"edit": Edit, "rating": Rating, "comparison": Comparison}


def acked(row: dict, kind: str) -> list[int]:
    """The ids of the writes of ``kind`` Attune acknowledged in this round."""
    return [pk for what, pk in row["acknowledged"] if what == kind]


@pytest.mark.django_db(transaction=True)
def test_a_simulated_person_uses_a_live_attune_as_an_apps_end_user(
    live_server, generation, user, eager_celery, tmp_path: Path
) -> None:
    app = create_client_app(user, "simulator")
    users = tmp_path / "population.json"
    users.write_text(json.dumps({"name": "one", "users": [PERSON]}))
    out = tmp_path / "run.jsonl"
    config = Config(
        url=live_server.url, key=app.key, users=users, rounds=ROUNDS, out=out, seed=1,
        compare_every=3, user_prefix="t1-", max_tokens=16, quiet=True,
    )  # fmt: skip
    result = simulate(config)

    rows = sorted(result.records, key=lambda r: r["round"])
    assert [r["round"] for r in rows] == list(range(ROUNDS))
    assert [r["error"] for r in rows] == [None] * ROUNDS
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(lines, key=lambda r: r["round"]) == rows  # the JSONL file is the records
    end_user = User.objects.get(client_app=app.record, external_id="t1-reader")
    for row in rows:
        interaction = Interaction.objects.get(pk=row["interaction_id"])
        assert interaction.user == end_user and interaction.source == row["source"] == "news"
        assert row["cost"] is not None and row["latency_ms"] > 0 and 200 in row["statuses"]

    # every acknowledged write is a row of that end user, and nothing else was written
    assert result.acknowledged and len(result.acknowledged) == sum(
        len(r["acknowledged"]) for r in rows
    )
    for kind, pk in result.acknowledged:
        assert ROW_MODELS[kind].objects.get(pk=pk).user == end_user
    written = {
        kind: model.objects.filter(user=end_user).count() for kind, model in ROW_MODELS.items()
    }
    assert written == {k: sum(1 for a, _ in result.acknowledged if a == k) for k in ROW_MODELS}

    # rounds 2 and 5 asked for two answers and said which one the person kept
    compared = [r for r in rows if r["compared"]]
    assert [r["round"] for r in compared] == [2, 5]
    for row in compared:
        (comparison_id,) = acked(row, "comparison")
        comparison = Comparison.objects.get(pk=comparison_id)
        pair = {comparison.interaction_a_id, comparison.interaction_b_id}
        assert len(pair) == 2 and row["interaction_id"] in pair
        a, b = row["costs"]
        assert comparison.choice == ("a" if a < b else "b" if b < a else "tie")

    # the person edits into bullet points before the change and into prose from it on
    for row in rows:
        if row["accepted"]:
            continue
        (edit_id,) = acked(row, "edit")
        edited = Edit.objects.get(pk=edit_id).edited
        wanted = "bullets" if row["round"] < CHANGE_AT else "prose"
        assert detect_style(edited)["format"] == wanted, (row["round"], edited)
    assert any(not r["accepted"] for r in rows[:CHANGE_AT])
    assert any(not r["accepted"] for r in rows[CHANGE_AT:])

    # what the edits taught shapes the next answers (memory, learned through Celery)
    assert MemoryEntry.objects.filter(user=end_user).exists()
    first_edit = min(r["round"] for r in rows if not r["accepted"])
    later = [r for r in rows if r["round"] > first_edit]
    assert later and all(r["memory_entry_ids"] for r in later)
    assert all("memory" in r["layers_applied"] for r in later)
    assert "bullet" in later[0]["preference"]
    assert "t1-reader" in summary(result) and f"{len(result.acknowledged)} acknowledged" in (
        summary(result)
    )

    # the same person with memory off for the run: no retrieval, no memory ids
    off = simulate(
        Config(
            url=live_server.url, key=app.key, users=users, rounds=2, seed=2, compare_every=0,
            user_prefix="t1-", max_tokens=8, layers_off=("memory",), quiet=True,
        )
    )  # fmt: skip
    assert [r["error"] for r in off.records] == [None, None]
    assert all(r["memory_entry_ids"] == [] for r in off.records)
    assert all("memory" not in r["layers_applied"] for r in off.records)
    switches = requests.get(
        live_server.url + "/api/layers",
        headers={"Authorization": f"Bearer {app.key}", "X-Attune-User": "t1-reader"},
        timeout=10,
    ).json()  # the run turned it off as the person's own setting too
    assert switches["memory"] is False and switches["adapter"] is True
