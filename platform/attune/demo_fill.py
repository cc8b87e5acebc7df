"""The filling of ``./attune demo``: a running Attune gets the data of a few weeks of use.

Against a platform that is up (``url``), from a process with Django set up on its database:
keys and checks go through the apps' services and selectors, everything a client would do goes
through the HTTP API. The steps, each printed with what it did and how long it took:

1. keys: the client app "Attune demo app" (its key kept in ``var/demo.json``, 0600, so that a
   refill plays new end users of the same app), and a personal token each for ``admin`` (staff:
   fits the vector, trains CoPL) and ``demo`` (plays a person), revoked when the fill ends;
2. the preference vector fit is queued first, so that the gpu worker has it done while people
   play (a user's adapter fit queues behind it);
3. the default population's people play ``rounds`` rounds as end users of the app, and ``demo``
   plays :data:`DEMO_PERSON` with its own token (a tqdm bar);
4. when the vector is fitted, the demo user's η for it (their slider on /me);
5. a CoPL training run (staff) on what they played;
6. waits (``wait_s`` at most) for the vector, the demo user's adapter and the CoPL version, and
   says why one is not there (too few pairs, a candidate the evaluation gate did not promote …;
   the checks are :mod:`attune.demo_checks`);
7. the console's edit-cost plot is computed now rather than at beat's next refresh.

A completed fill is recorded in ``var/demo.json``; a second fill is skipped unless ``refill``,
which plays new people (end-user names with a new prefix) in the same app.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

APP_NAME = "Attune demo app"
DEMO_PERSON = "busy-manager"  # brief bullet points everywhere: a style one adapter learns well
DIMENSION = "tone-casual-vs-formal"  # the best-behaved vector (README, bench adapters)
DEMO_ETA = -0.5  # halfway to "formal": the busy manager's papers and meetings
DEMO_ROUNDS = 24  # measured: the fill ends within 5 minutes on 2 cores (README)
TOKEN_NAME = "attune demo fill"
POLL_S = 1.0
SHOW_EVERY_S = 15.0  # a waiting step's progress, at most this often


@dataclass(frozen=True)
class FillOptions:
    """What to fill: how many of the default population's people, how many rounds each."""

    people: int = 6
    rounds: int = DEMO_ROUNDS
    seed: int = 0
    refill: bool = False
    wait: bool = True  # wait for the vector, the demo user's adapter and the CoPL version
    wait_s: float = 240.0  # … at most this long after the simulation
    max_tokens: int | None = None
    quiet: bool | None = None  # the progress bar: None shows it on a terminal only
    timeout: float = 120.0  # seconds per HTTP request


@dataclass
class Step:
    """One step of the fill: what it did (or why it could not), and how long it took."""

    name: str
    outcome: str
    seconds: float
    done: bool = True


@dataclass
class Filled:
    """What a fill did; ``skipped``: the install was filled before (and no refill asked)."""

    skipped: bool
    steps: list[Step] = field(default_factory=list)
    app_key: str = ""
    prefix: str = ""
    created_logins: list[Any] = field(default_factory=list)  # apps.accounts.demo.DemoLogin


def state_path() -> Path:
    from core.config import var_dir

    return var_dir() / "demo.json"


def read_state(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def write_state(path: Path, state: dict[str, Any]) -> None:
    """The app key is a secret: the file is the owner's only (as var/secret_key is)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(state, indent=2) + "\n")
    os.chmod(staging, 0o600)
    staging.replace(path)


def demo_app(state: dict[str, Any]) -> Any:
    """The demo app recorded in ``state`` when its key still opens it (None otherwise: a new
    database, or the app was revoked)."""
    from apps.accounts.selectors import active_app_for_key

    key = state.get("app_key")
    app = active_app_for_key(key) if isinstance(key, str) else None
    return app if app is not None and app.pk == state.get("app_id") else None


def is_filled(path: Path) -> bool:
    """Whether a fill of this install completed (recorded, and its app is in this database)."""
    state = read_state(path)
    return bool(state.get("fills")) and demo_app(state) is not None


def new_prefix(app: Any, first_person: str) -> str:
    """End-user names no earlier fill used in ``app``: none for the first, then ``r2-`` …"""
    from apps.accounts.models import User

    for n in range(1, 1000):
        prefix = "" if n == 1 else f"r{n}-"
        if not User.objects.filter(client_app=app, external_id=prefix + first_person).exists():
            return prefix
    raise RuntimeError("a thousand fills of one app: start from a fresh install")


class Api:
    """``requests`` with a bearer key; the JSON of an answer, or a RuntimeError that says what
    the platform answered."""

    def __init__(self, url: str, key: str, timeout: float) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        answer = self.session.request(method, self.url + path, json=body, timeout=self.timeout)
        try:
            data = answer.json()
        except ValueError:
            data = answer.text[:300]
        if answer.status_code >= 400 and answer.status_code != 409:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {data}")
        return answer.status_code, data

    def close(self) -> None:
        self.session.close()


class Filler:
    """One fill; :meth:`run` does the steps in order, printing each with ``echo``."""

    def __init__(self, url: str, options: FillOptions, path: Path, echo: Callable) -> None:
        self.url, self.options, self.path, self.echo = url, options, path, echo
        self.result = Filled(skipped=False)
        self.tokens: list[Any] = []
        self.apis: list[Api] = []
        self.state: dict[str, Any] = {}
        self.simulated_at = 0.0  # when the simulation ended: the waits count from there

    def step(
        self, name: str, began: float, outcome: str, done: bool = True, waited: bool = False
    ) -> None:
        """Record and print a step; ``waited``: its time counts from the simulation's end."""
        seconds = time.monotonic() - began
        self.result.steps.append(Step(name, outcome, seconds, done))
        after = " after the simulation" if waited else ""
        self.echo(f"  {'✓' if done else '·'} {name}: {outcome} ({seconds:.1f} s{after})")

    def run(self) -> Filled:
        if is_filled(self.path) and not self.options.refill:
            return Filled(skipped=True, app_key=str(read_state(self.path).get("app_key", "")))
        from apps.accounts.services import revoke

        try:
            self._fill()
        finally:
            for api in self.apis:
                api.close()
            for token in self.tokens:
                revoke(token)
        return self.result

    def _fill(self) -> None:
        from apps.accounts.demo import ensure_demo_users
        from apps.accounts.models import User
        from attune import demo_checks as checks

        began = time.monotonic()
        self.result.created_logins = ensure_demo_users()
        admin, demo = User.objects.get(username="admin"), User.objects.get(username="demo")
        app_key = self._app(admin)
        self.staff, self.demo_key = self._api(admin), self._token(demo)
        keys = f"client app {APP_NAME!r} (key in {self.path}); tokens for admin and demo"
        self.step("keys", began, keys + " (revoked when the fill ends)")
        began = time.monotonic()
        vector_job, what = self._queue_vector()
        self.step("preference vector", began, what)
        began = time.monotonic()
        self._simulate(app_key, demo)
        self.step("simulation", began, f"{self._played()}; {checks.demo_data(demo)}")
        self.simulated_at = time.monotonic()
        deadline = self.simulated_at + (self.options.wait_s if self.options.wait else 0.0)
        copl_run, why_not = self._queue_copl()
        if vector_job is not None:
            self._wait(
                "preference vector", lambda: checks.vector_fit(vector_job, DIMENSION), deadline
            )
        self._set_eta(demo)
        if copl_run is None:
            self.step("CoPL version", time.monotonic(), why_not, done=False)
        else:
            self._wait("CoPL version", lambda: checks.copl_run(copl_run), deadline)
        self._wait("demo's adapter", lambda: checks.adapter(demo), deadline)
        began = time.monotonic()
        plots = checks.console_plots()
        self.step("console plots", began, plots.text + " (/console/plots)", plots.ok)
        self.state.setdefault("fills", []).append(
            {
                "prefix": self.result.prefix,
                "people": self.options.people,
                "rounds": self.options.rounds,
                "finished_at": datetime.now(UTC).isoformat(),
            }
        )
        write_state(self.path, self.state)

    def _app(self, admin: Any) -> str:
        """The demo app's key (a new app when none is recorded for this database); the prefix
        of this fill's end users."""
        from apps.accounts.services import create_client_app
        from simulator.population import load_people

        self.state = read_state(self.path)
        app = demo_app(self.state)
        if app is None:
            issued = create_client_app(admin, APP_NAME)
            app, self.state = issued.record, {"app_id": issued.record.pk, "app_key": issued.key}
            write_state(self.path, self.state)
        self.result.app_key = self.state["app_key"]
        self.result.prefix = new_prefix(app, load_people(None)[0].end_user)
        return self.result.app_key

    def _token(self, user: Any) -> str:
        """A personal token for this fill only (revoked when it ends)."""
        from apps.accounts.services import issue_personal_token

        issued = issue_personal_token(user, TOKEN_NAME)
        self.tokens.append(issued.record)
        return issued.key

    def _api(self, user: Any) -> Api:
        api = Api(self.url, self._token(user), self.options.timeout)
        self.apis.append(api)
        return api

    def _queue_vector(self) -> tuple[int | None, str]:
        """(the fit job's id, what was done); a vector of :data:`DIMENSION` that exists is kept."""
        from apps.adapters.selectors import active_vectors

        if (vector := active_vectors().filter(name=DIMENSION).first()) is not None:
            return None, f"{DIMENSION} exists (version {vector.version}): kept"
        _, job = self.staff.call("POST", "/api/preference-vectors/fit", {"dimension": DIMENSION})
        return int(job["id"]), f"fit of {DIMENSION} queued (job {job['id']}, gpu worker)"

    def _simulate(self, app_key: str, demo: Any) -> None:
        from simulator.population import load_people, token_person
        from simulator.run import Config, simulate

        options = self.options
        people = load_people(None, self.result.prefix, options.seed)[: options.people]
        (played,) = [p.user for p in load_people(None) if p.user.user_id == DEMO_PERSON]
        people.append(token_person(played, self.demo_key, demo.username, options.seed))
        names = ", ".join(p.name for p in people)
        self.echo(f"  {names} play {options.rounds} rounds each (demo as {DEMO_PERSON})")
        config = Config(
            url=self.url, key=app_key, rounds=options.rounds, seed=options.seed,
            user_prefix=self.result.prefix, max_tokens=options.max_tokens,
            timeout=options.timeout, quiet=options.quiet,
        )  # fmt: skip
        self.simulated = simulate(config, people)

    def _played(self) -> str:
        people = self.simulated.people
        rounds, errors = sum(len(p.costs) for p in people), sum(p.errors for p in people)
        return f"{rounds} rounds ({errors} failed), {len(self.simulated.acknowledged)} writes"

    def _set_eta(self, demo: Any) -> None:
        """The demo user's slider for the vector, through the API as they would set it."""
        from apps.adapters.selectors import active_vectors

        began = time.monotonic()
        if not active_vectors().filter(name=DIMENSION).exists():
            why = f"not set: no {DIMENSION} vector yet (set it on /me once it is fitted)"
            self.step("demo's slider", began, why, done=False)
            return
        demo_api = Api(self.url, self.demo_key, self.options.timeout)
        self.apis.append(demo_api)
        demo_api.call(
            "PUT", "/api/preference-coefficients", {"coefficients": {DIMENSION: DEMO_ETA}}
        )
        done = f"η {DIMENSION} = {DEMO_ETA:g} (PUT /api/preference-coefficients as demo)"
        self.step("demo's slider", began, done)

    def _queue_copl(self) -> tuple[int | None, str]:
        """(the run's id, or None and why there is none)."""
        code, run = self.staff.call("POST", "/api/collab/versions")
        if code == 409 and "needed" in run:
            what = run.get("what", "pairs")
            return None, f"not trained: {run['needed']} {what} needed, {run['available']} so far"
        if code == 409:
            return None, f"not trained: {run.get('detail', run)}"
        return int(run["id"]), ""

    def _wait(self, name: str, check: Callable, deadline: float) -> None:
        """Poll ``check()`` (:mod:`attune.demo_checks`) until its story ends or the deadline;
        the step's time counts from the simulation's end."""
        found, shown, shown_at = check(), "", 0.0
        while not found.finished and time.monotonic() < deadline:
            stage = re.sub(r"\d+%", "", found.text)  # a new stage at once, progress now and then
            if stage != re.sub(r"\d+%", "", shown) or time.monotonic() - shown_at > SHOW_EVERY_S:
                self.echo(f"    … {name}: {found.text}")
                shown, shown_at = found.text, time.monotonic()
            time.sleep(POLL_S)
            found = check()
        text = found.text
        if not found.finished:
            late = f"not done after {self.options.wait_s:.0f} s" if self.options.wait else ""
            text += f"; {late or 'not waited for (--no-wait)'}: see /console/jobs"
        self.step(name, self.simulated_at, text, found.ok, waited=True)


def fill(
    url: str, options: FillOptions, path: Path | None = None, echo: Callable = print
) -> Filled:
    """Fill the Attune at ``url`` (see the module's docstring); Django must be set up on its
    database. ``path``: where the fill is recorded (``var/demo.json``)."""
    return Filler(url, options, path or state_path(), echo).run()
