"""``./attune demo``: the fill against a live test server with a real serving process (the tiny
style model; Celery eager, so the vector fit runs in the request that queues it), its second
run skipped and a refill with new people; the platform's output filtered to its own lines; the
command's options.

A full ``./attune demo`` (the built-in model, real workers, the adapter and CoPL within the
5 minutes) is measured by hand: README, "Try it with data".
"""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from apps.accounts.models import ClientApp, PersonalToken, User
from apps.adapters.models import PreferenceCoefficient, PreferenceVector
from apps.feedback.models import Comparison, Edit, Interaction, Rating
from attune.cli import parser
from attune.demo import Platform, demo_options
from attune.demo_fill import (
    APP_NAME,
    DEMO_ETA,
    DIMENSION,
    TOKEN_NAME,
    FillOptions,
    fill,
    read_state,
)
from tests.apps.generation.conftest import generation, serving, style_var  # noqa: F401


def feedback_of(user: User) -> int:
    return sum(m.objects.filter(user=user).count() for m in (Edit, Rating, Comparison))


@pytest.mark.django_db(transaction=True)
def test_a_fill_plays_people_and_demo_sets_a_slider_and_says_what_is_missing(
    live_server,
    generation,  # noqa: F811 (the fixture imported above)
    eager_celery,
    settings,
    monkeypatch,
    tmp_path: Path,
) -> None:
    from workers.modeling.style_lm import style_lm_dir

    monkeypatch.setenv("ATTUNE_BASE_MODEL", str(style_lm_dir(generation.var)))  # eager fits
    settings.ATTUNE_VECTOR_PAIRS = 8
    settings.ATTUNE_VECTOR_FIT = {**settings.ATTUNE_VECTOR_FIT, "epochs": 1, "batch_size": 4}
    path = tmp_path / "demo.json"
    options = FillOptions(people=2, rounds=3, max_tokens=12, quiet=True, wait_s=20)
    printed: list[str] = []
    filled = fill(live_server.url, options, path, echo=printed.append)

    assert not filled.skipped and filled.prefix == ""
    assert {x.username for x in filled.created_logins} == {"admin", "demo"}  # a bare database
    app = ClientApp.objects.get(name=APP_NAME)
    assert app.owner.username == "admin" and filled.app_key.startswith("apk_")
    end_users = User.objects.filter(client_app=app).order_by("external_id")
    assert [u.external_id for u in end_users] == ["busy-manager", "prelude"]
    for person in end_users:
        assert Interaction.objects.filter(user=person).count() == 3 and feedback_of(person) >= 3
    demo = User.objects.get(username="demo", client_app=None)
    assert Interaction.objects.filter(user=demo).count() == 3 and feedback_of(demo) >= 3
    assert PreferenceVector.objects.filter(name=DIMENSION, is_active=True).exists()
    assert PreferenceCoefficient.objects.get(user=demo, vector_name=DIMENSION).eta == DEMO_ETA

    steps = {s.name: s for s in filled.steps}
    assert list(steps) == [
        "keys", "preference vector", "simulation", "demo's slider", "CoPL version",
        "demo's adapter", "console plots",
    ]  # fmt: skip
    assert steps["simulation"].outcome.startswith("9 rounds (0 failed), ")
    assert "; demo has 3 texts, " in steps["simulation"].outcome
    assert steps["demo's slider"].done and steps["preference vector"].done
    # three users with a few pairs: no CoPL run, no adapter fit, and each says why
    copl = steps["CoPL version"]
    assert not copl.done and copl.outcome.startswith("not trained: ") and "needed" in copl.outcome
    adapter = steps["demo's adapter"]
    assert (
        not adapter.done
        and adapter.outcome.startswith("no fit: ")
        and "of 16 pairs" in (adapter.outcome)
    )
    assert "edit cost per round over 3 rounds" in steps["console plots"].outcome
    assert all(s.seconds >= 0 for s in filled.steps)
    assert any(line.startswith("  ✓ simulation: 9 rounds") for line in printed)
    # the fill's own tokens are revoked; the app's key is kept for the owner only
    assert not PersonalToken.objects.filter(name=TOKEN_NAME, revoked_at=None).exists()
    assert read_state(path)["app_key"] == filled.app_key and len(read_state(path)["fills"]) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # a filled install: nothing is played again
    before = Interaction.objects.count()
    again = fill(live_server.url, options, path, echo=printed.append)
    assert again.skipped and again.app_key == filled.app_key and not again.steps
    assert Interaction.objects.count() == before

    # --refill: new people of the same app, under a new prefix; the vector is kept
    refill = FillOptions(people=1, rounds=1, max_tokens=8, quiet=True, refill=True, wait_s=5)
    third = fill(live_server.url, refill, path, echo=printed.append)
    assert not third.skipped and third.prefix == "r2-" and third.app_key == filled.app_key
    assert User.objects.filter(client_app=app, external_id="r2-prelude").exists()
    assert Interaction.objects.filter(user=demo).count() == 4
    assert (
        "exists (version 1): kept" in {s.name: s for s in third.steps}["preference vector"].outcome
    )
    assert PreferenceVector.objects.filter(name=DIMENSION).count() == 1
    assert len(read_state(path)["fills"]) == 2


def test_the_platforms_own_lines_are_shown_and_everything_is_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = (
        b"attune: starting the embedded PostgreSQL (var/pgdata) \xe2\x80\xa6\n"
        b"\nDemo logins (shown this once; keep them):\n"
        b"  staff  admin / pw-a   API token: atk_a\n"
        b"  user   demo / pw-d   API token: atk_d\n"
        b'127.0.0.1 - - "GET /healthz HTTP/1.1" 200\n'
        b"[2026-01-01 00:00:00,000: INFO/MainProcess] celery@host ready.\n"
        b"attune: running web, worker; Ctrl-C stops everything\n"
    )
    platform = Platform("127.0.0.1", 8000, {}, tmp_path / "platform.log")
    platform._read(io.BytesIO(output))
    assert platform.logins == [
        ("staff", "admin", "pw-a", "atk_a"),
        ("user", "demo", "pw-d", "atk_d"),
    ]
    shown = capsys.readouterr().out.splitlines()
    assert shown == [
        "attune: starting the embedded PostgreSQL (var/pgdata) …",
        "Demo logins (shown this once; keep them):",
        "  staff  admin / pw-a   API token: atk_a",
        "  user   demo / pw-d   API token: atk_d",
        "attune: running web, worker; Ctrl-C stops everything",
    ]
    assert (tmp_path / "platform.log").read_bytes() == output


def test_the_demo_command_parses_its_options() -> None:
    args = parser().parse_args(["demo"])
    assert (args.port, args.people, args.rounds, args.no_wait, args.refill) == (
        8000, 6, args.rounds, False, False,
    )  # fmt: skip
    assert args.rounds >= 16  # enough for the demo user's adapter fit (ATTUNE_FIT_TRIGGER_PAIRS)
    argv = ["demo", "--people", "2", "--rounds", "5", "--port", "8123", "--no-wait", "--refill"]
    args = parser().parse_args(argv)
    assert args.port == 8123 and args.func.__name__ == "cmd_demo"
    assert demo_options(args) == FillOptions(people=2, rounds=5, refill=True, wait=False)
    for bad in (["--people", "7"], ["--people", "0"], ["--rounds", "0"], ["--rounds", "x"]):
        with pytest.raises(SystemExit) as exited:
            parser().parse_args(["demo", *bad])
        assert exited.value.code == 2
