"""The simulator without a platform: people and their contexts, a bad population file at the
command line (exit 2 and a message), and the client's waiting on 429/503 ``Retry-After``
against a small HTTP server that speaks Attune's write protocol."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from attune.cli import main as attune_main
from simulator.client import AttuneClient, RequestFailed, retry_after_seconds
from simulator.population import PopulationError, load_people, token_person

CHANGING = {
    "id": "shifter",
    "preferences": {"news": "bullet points", "wiki": "brief"},
    "changes": [{"at_round": 4, "preferences": {"meeting": "formal"}}],
}


def population(tmp_path: Path, *users: object) -> Path:
    path = tmp_path / "population.json"
    path.write_text(json.dumps({"name": "test", "users": list(users)}))
    return path


def test_a_person_reads_their_sources_and_follows_a_change(tmp_path: Path) -> None:
    (person,) = load_people(population(tmp_path, CHANGING), prefix="run1-", seed=3)
    assert person.end_user == "run1-shifter"
    before = {person.next_context(r).source for r in range(4)}
    assert before <= {"news", "wiki"}
    assert {person.next_context(r).source for r in range(4, 10)} == {"meeting"}
    assert person.user.at_round(3).latent_style("news") == {"format": "bullets"}
    assert person.user.at_round(4).latent_style("news") == {}
    assert person.user.at_round(4).latent_style("meeting") == {"tone": "formal"}


def test_contexts_are_the_persons_own_seeded_stream(tmp_path: Path) -> None:
    path = population(tmp_path, {"id": "a"}, {"id": "b"})
    a1, b1 = load_people(path, seed=7)
    (a2, _) = load_people(path, seed=7)
    first = [a1.next_context(r) for r in range(5)]
    assert [b1.next_context(r) for r in range(5)] != first  # each person their own stream
    assert [a2.next_context(r) for r in range(5)] == first  # whatever the others did
    assert len({c.source for c in first}) > 1  # no preferences: every source


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ([{"id": "a", "preferences": {"blog": "brief"}}], "unknown sources ['blog']"),
        ([{"id": "a", "changes": [{"at_round": 3}]}], "exactly 'at_round' and 'preferences'"),
        (
            [{"id": "a", "changes": [{"at_round": 5, "preferences": {}}] * 2}],
            "changes[1].at_round 5 must be greater than the previous change's (5)",
        ),
        ([{"id": "a b"}], "end-user name 'a b' is not one Attune accepts"),
        ([], "the population has no users"),
    ],
)
def test_a_bad_population_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], users: list, message: str
) -> None:
    path = population(tmp_path, *users)
    assert attune_main(["simulate", "--key", "apk_x", "--users", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"attune simulate: {path}: ") and message in err
    assert "Traceback" not in err


def test_a_population_that_is_not_json_or_missing_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert attune_main(["simulate", "--key", "apk_x", "--users", str(broken)]) == 2
    assert "not JSON" in capsys.readouterr().err
    missing = tmp_path / "missing.json"
    assert attune_main(["simulate", "--key", "apk_x", "--users", str(missing)]) == 2
    assert "cannot read it" in capsys.readouterr().err
    with pytest.raises(PopulationError):
        load_people(missing)


def test_options_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATTUNE_SIM_KEY", raising=False)
    for argv in (["simulate"], ["simulate", "--key", "k", "--layers-off", "memory,colour"]):
        with pytest.raises(SystemExit) as exited:
            attune_main(argv)
        assert exited.value.code == 2


class Refusing:
    """A server that refuses the first ``refusals`` POSTs with ``status`` and ``Retry-After``
    (status 0: hangs up without answering), then acknowledges (201) with an id; it records the
    end user each request named."""

    def __init__(self, status: int, refusals: int, retry_after: str | None = "0") -> None:
        self.status, self.refusals, self.retry_after = status, refusals, retry_after
        self.seen: list[str] = []

    @property
    def handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.seen.append(self.headers["X-Attune-User"])
                if outer.status == 0 and len(outer.seen) <= outer.refusals:
                    self.close_connection = True  # hang up without an answer
                    return
                if len(outer.seen) <= outer.refusals:
                    self.send_response(outer.status)
                    if outer.retry_after is not None:
                        self.send_header("Retry-After", outer.retry_after)
                    body = b'{"detail": "busy"}'
                else:
                    self.send_response(201)
                    body = json.dumps({"id": 41}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(stub: Refusing) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), stub.handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [429, 503])
def test_refusals_with_retry_after_are_waited_out_and_counted(serve: Any, status: int) -> None:
    stub = Refusing(status, refusals=2)
    client = AttuneClient(serve(stub), "apk_x", "ana")
    statuses: list[int] = []
    assert client.post("/api/ratings", {"interaction": 1, "thumbs": "up"}, statuses) == {"id": 41}
    assert statuses == [status, status, 201] and client.waits == 2
    assert stub.seen == ["ana"] * 3
    client.close()


def test_a_person_with_a_personal_token_names_no_end_user(serve: Any, tmp_path: Path) -> None:
    """``./attune demo``'s demo login: the token's own user, not an end user of the app."""
    (reader,) = load_people(population(tmp_path, CHANGING), prefix="run1-", seed=3)
    person = token_person(reader.user, "atk_own", label="demo", seed=3)
    assert (person.key, person.end_user, person.name) == ("atk_own", "", "demo")
    assert [person.next_context(r) for r in range(3)] != [reader.next_context(r) for r in range(3)]
    assert token_person(reader.user, "atk_own").name == "shifter (own key)"
    stub = Refusing(201, refusals=0)
    client = AttuneClient(serve(stub), "atk_own", person.end_user)
    assert client.post("/api/ratings", {"interaction": 1, "thumbs": "up"}, []) == {"id": 41}
    assert stub.seen == [None]  # no X-Attune-User header
    client.close()


def test_other_refusals_are_errors_not_retried(serve: Any) -> None:
    stub = Refusing(503, refusals=1, retry_after=None)  # no Retry-After: nothing says when
    client = AttuneClient(serve(stub), "apk_x", "ana")
    statuses: list[int] = []
    with pytest.raises(RequestFailed) as failed:
        client.post("/api/edits", {"interaction": 1, "edited": "x"}, statuses)
    assert failed.value.status == 503 and statuses == [503] and client.waits == 0
    client.close()


def test_a_dropped_connection_is_tried_once_more(serve: Any) -> None:
    client = AttuneClient(serve(Refusing(0, refusals=1)), "apk_x", "ana")
    statuses: list[int] = []
    assert client.post("/api/edits", {"interaction": 1, "edited": "x"}, statuses) == {"id": 41}
    assert statuses == [0, 201] and client.reconnects == 1
    client.close()
    client = AttuneClient(serve(Refusing(0, refusals=2)), "apk_x", "ana")
    with pytest.raises(RequestFailed) as failed:
        client.post("/api/edits", {"interaction": 1, "edited": "x"}, statuses := [])
    assert failed.value.status == 0 and statuses == [0, 0] and client.reconnects == 1
    client.close()


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_the_simulator_is_client_side_only() -> None:
    """It drives any Attune over HTTP: importing it loads neither Django, the apps nor torch."""
    code = (
        "import sys, simulator.__main__\n"
        "print(sorted(m for m in ('django', 'torch', 'apps', 'workers') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
