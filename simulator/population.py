"""The people of a simulation: a population file's users, named as the app's end users, each
with their own seeded stream of contexts.

A population is the offline world's JSON (``core.world.simulated_users``, ``changes`` included);
this module adds what a run over HTTP needs: the end-user name (``--user-prefix`` + id, so
several runs against one Attune don't share people), a random generator per person (so a person's
contexts do not depend on how the threads interleave), and which sources a person reads. A person
may instead act with a personal token of their own (:func:`token_person`): they are then the
token's user, not an end user of the app (``./attune demo`` plays its ``demo`` login that way).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.world.simulated_users import DEFAULT_POPULATION, SimulatedUser, load_population
from core.world.sources import SOURCE_NAMES, Context, make_context

END_USER_ID = re.compile(r"^[A-Za-z0-9_.@:+\-]{1,128}$")  # what Attune accepts as `user`


class PopulationError(ValueError):
    """A population file that cannot be played; the message names the file and the problem."""


@dataclass
class Person:
    """One simulated person: the judge, their end-user name, their own random stream.

    ``key`` None: an end user of the run's client app, named ``end_user``. A key of their own
    (a personal token) with ``end_user`` "": the token's user; ``label`` names them in the
    records and the summary (there is no end-user name to show).
    """

    user: SimulatedUser
    end_user: str
    rng: random.Random = field(repr=False)
    key: str | None = field(default=None, repr=False)
    label: str = ""

    @property
    def name(self) -> str:
        """How the records and the summary name this person."""
        return self.label or self.end_user or f"{self.user.user_id} (own key)"

    def sources(self, round_number: int) -> tuple[str, ...]:
        """The sources this person reads at a round: those they have a preference for then
        (every source when they have none)."""
        preferences = self.user.at_round(round_number).preferences
        return tuple(s for s in SOURCE_NAMES if s in preferences) or SOURCE_NAMES

    def next_context(self, round_number: int) -> Context:
        """The context of this round: one of their sources, a fresh document of it."""
        source = self.rng.choice(self.sources(round_number))
        return make_context(source, self.rng.randrange(2**31))


def load_people(path: Path | str | None, prefix: str = "", seed: int = 0) -> list[Person]:
    """The people of the population at ``path`` (default population when None); raises
    :class:`PopulationError` for a file that is missing, not JSON, or not a valid population,
    and for an end-user name Attune would refuse."""
    where = Path(path or DEFAULT_POPULATION)
    try:
        users = load_population(where)
    except OSError as err:
        raise PopulationError(f"{where}: cannot read it ({err.strerror or err})") from None
    except json.JSONDecodeError as err:
        raise PopulationError(f"{where}: not JSON ({err})") from None
    except ValueError as err:
        raise PopulationError(f"{where}: {err}") from None
    if not users:
        raise PopulationError(f"{where}: the population has no users")
    people = []
    for user in users:
        name = prefix + user.user_id
        if not END_USER_ID.match(name):
            raise PopulationError(
                f"{where}: end-user name {name!r} is not one Attune accepts "
                "(1-128 characters: letters, digits and _ . @ : + -)"
            )
        people.append(Person(user, name, random.Random(f"{seed}:{user.user_id}")))
    return people


def token_person(user: SimulatedUser, key: str, label: str = "", seed: int = 0) -> Person:
    """``user``'s preferences played with a personal token (``key``): the requests name no end
    user, so they act as the token's own user (a person with a login, not an app's end user)."""
    stream = random.Random(f"{seed}:token:{user.user_id}")  # not the end user's stream
    return Person(user, "", stream, key=key, label=label)
