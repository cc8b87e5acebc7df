"""The 2-D map of a CoPL version's user embeddings: the first two principal components, computed
once per version and set of embeddings and shared by the staff API (paged) and the console (an
even sample). Torch-free (numpy).

Why a cache: at 10,000 users, loading every 64-d vector and running the SVD takes about half a
second of one core, and the map only changes when the version's embeddings do (they are written
once, when a run is activated). The key is the version and a stamp of its embeddings (their
count and largest id), so a changed set is recomputed and a stale map is never served. The
computation is kept in this process (the latest few maps, ~300 KB each at 10,000 users) and in
Django's cache (other processes). Only ids, coordinates and experts are cached; names are read
per page, so a renamed user shows their current name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np
from django.core.cache import cache
from django.db.models import Count, Max
from django.db.models.expressions import RawSQL

from apps.accounts.models import User
from apps.collab.models import CollabModelVersion, UserEmbedding

CACHE_TTL = 3600
CACHE_PREFIX = "collab:embedding-map:v2"  # bump when Places changes shape
KEEP_IN_PROCESS = 4  # versions whose map this process holds (staff may compare a few)
_IN_PROCESS: dict[str, Places] = {}


@dataclass(frozen=True)
class MapPoint:
    user_id: int
    username: str
    client_app_id: int | None
    expert: int | None
    x: float
    y: float


@dataclass(frozen=True)
class Places:
    """Every trained user's place on the map of a version, ordered by user id: the ids, their
    unrounded ``(x, y)`` and expert (-1: none)."""

    version_id: int
    ids: np.ndarray
    xy: np.ndarray
    experts: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, user_id: int) -> int | None:
        """The user's row (None: not in this version)."""
        at = int(np.searchsorted(self.ids, user_id))
        if at == len(self.ids) or self.ids[at] != user_id:
            return None
        return at

    def point(self, at: int, user_id: int, username: str, client_app_id: int | None) -> MapPoint:
        """Row ``at`` as a map point of the named user (coordinates rounded to 6 places)."""
        expert = int(self.experts[at])
        x, y = self.xy[at]
        expert_or_none = None if expert < 0 else expert
        return MapPoint(
            user_id, username, client_app_id, expert_or_none, round(float(x), 6), round(float(y), 6)
        )

    def point_of(self, user: User) -> MapPoint | None:
        """The user's point (None: not in this version), named from ``user`` (no query)."""
        at = self.index_of(user.pk)
        return None if at is None else self.point(at, user.pk, user.username, user.client_app_id)

    def points(self, rows: range | list[int]) -> list[MapPoint]:
        """The map points of ``rows`` (indexes), named by one query; a user deleted since the
        map was made is left out (their embeddings went with them)."""
        ids = [int(self.ids[i]) for i in rows]
        names = self._names(ids, contiguous=isinstance(rows, range) and rows.step == 1)
        return [
            self.point(i, user_id, *names[user_id])
            for i, user_id in zip(rows, ids, strict=True)
            if user_id in names
        ]

    def _names(self, ids: list[int], contiguous: bool) -> dict[int, tuple[str, int | None]]:
        """Username and client app by user id. Consecutive rows (a page) are read as the
        version's users between the first and the last id (one range of the (version, user)
        index: a list of 10,000 ids costs Django a third of a second to bind); scattered rows
        (a sample) by their ids, sent as one array."""
        if not ids:
            return {}
        if contiguous:
            rows = UserEmbedding.objects.filter(
                version_id=self.version_id, user_id__gte=ids[0], user_id__lte=ids[-1]
            ).values_list("user_id", "user__username", "user__client_app_id")
        else:
            one_array = RawSQL("SELECT unnest(%s::bigint[])", (ids,))  # one parameter, not 500
            rows = User.objects.filter(pk__in=one_array).values_list(
                "pk", "username", "client_app_id"
            )
        return {pk: (username, app) for pk, username, app in rows}


def compute(version_id: int) -> Places:
    """The principal components of the version's embeddings (numpy SVD of the centred matrix;
    signs fixed so the largest loading of each component is positive): the map's definition."""
    rows = list(
        UserEmbedding.objects.filter(version_id=version_id)
        .order_by("user_id")
        .values_list("user_id", "expert", "vector")
    )
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    experts = np.array([-1 if r[1] is None else r[1] for r in rows], dtype=np.int32)
    coords = np.zeros((len(rows), 2))
    if len(rows) > 1:
        matrix = np.stack([np.asarray(r[2], dtype=np.float64) for r in rows])
        centred = matrix - matrix.mean(axis=0)
        u, s, vt = np.linalg.svd(centred, full_matrices=False)
        n = min(2, len(s))
        signs = np.sign(vt[np.arange(n), np.abs(vt[:n]).argmax(axis=1)])
        signs[signs == 0] = 1.0
        coords[:, :n] = u[:, :n] * s[:n] * signs
    return Places(version_id, ids, coords, experts)


def places(version: CollabModelVersion | int) -> Places:
    """The version's map, from this process, else Django's cache, else computed (and stored in
    both). One aggregate query checks that the embeddings are still the ones it was made from."""
    version_id = version if isinstance(version, int) else version.pk
    stamp = UserEmbedding.objects.filter(version_id=version_id).aggregate(
        n=Count("pk"), last=Max("pk")
    )
    if not stamp["n"]:
        return Places(version_id, np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros(0, np.int32))
    key = f"{CACHE_PREFIX}:{version_id}:{stamp['n']}:{stamp['last']}"
    found = _IN_PROCESS.get(key)
    if found is None:
        found = cache.get(key)
        if found is None:
            found = compute(version_id)
            cache.set(key, found, CACHE_TTL)
        for oldest in list(_IN_PROCESS)[: max(0, len(_IN_PROCESS) - KEEP_IN_PROCESS + 1)]:
            _IN_PROCESS.pop(oldest, None)  # another thread may have dropped it already
        _IN_PROCESS[key] = found
    return found


class MapPoints:
    """A version's map as a lazy list ordered by user id: ``len()`` is the number of users and
    a slice names only its own users (one query), so a paginator serves a page of 10,000 users
    without building the rest."""

    def __init__(self, found: Places) -> None:
        self.places = found

    def __len__(self) -> int:
        return len(self.places)

    @overload
    def __getitem__(self, at: int) -> MapPoint: ...
    @overload
    def __getitem__(self, at: slice) -> list[MapPoint]: ...
    def __getitem__(self, at: int | slice) -> MapPoint | list[MapPoint]:
        if isinstance(at, slice):
            return self.places.points(range(len(self))[at])
        points = self.places.points([range(len(self))[at]])
        if not points:
            raise IndexError(at)
        return points[0]


def points(version: CollabModelVersion | int) -> MapPoints:
    """Every trained user of ``version`` on the map, ordered by user id (lazy: slice it)."""
    return MapPoints(places(version))


def sample(version: CollabModelVersion | int, at_most: int) -> tuple[list[MapPoint], Places]:
    """Every n-th user by id (at most ``at_most`` of them) and the whole map, for a drawing."""
    found = places(version)
    step = max(1, -(-len(found) // max(1, at_most)))
    return found.points(range(0, len(found), step)), found
