"""The console's drawn figures (inline SVG) and CoPL neighbours, reused while what they were
drawn from is unchanged.

A user's page and the plots page spent most of their time drawing: the edit-cost plot of a
heavy editor (500 rounds), the nearest neighbours and the 500-point embedding map, the busiest
editors' 4,000 rounds. Each figure is kept in the cache under a key made of what it shows (the
user's counters, the active CoPL version, the computed overall series and the editors'
counters), so an edit is drawn at once; only the CoPL neighbours, which change when CoPL runs or
adapts the user, may be ``FIGURE_TTL`` seconds old.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache

from apps.accounts.models import User
from apps.collab.selectors import active_version
from apps.console import collab, plots, selectors

FIGURE_TTL = 30  # seconds a kept figure lives (the CoPL neighbours may be this old)


def user_cost_plot(person: User) -> object:
    """The user's edit cost per round, drawn; kept ``FIGURE_TTL`` seconds under the user's
    counters (a new round or edit is a new key, so the plot is current after an edit)."""
    key = f"console:user-cost-plot:{person.pk}:{person.n_rounds}:{person.n_edits}"
    found = cache.get(key)
    if found is None:
        found = (_draw_cost_plot(person.pk),)
        cache.set(key, found, FIGURE_TTL)
    return found[0]


def _draw_cost_plot(user_id: int) -> object:
    rounds = selectors.cost_per_round([user_id]).get(user_id, [])
    running, total = [], 0.0
    for index, r in enumerate(rounds, start=1):
        total += r.cost
        running.append((r.round, total / index))
    return plots.line_chart(
        [
            plots.Series("edit cost", [(r.round, r.cost) for r in rounds], dots=True),
            plots.Series("running mean", running, color="#111827", width=2.5),
        ],
        title="Edit cost per round",
        x_label="round (edited interaction, in order)",
        y_label="words changed",
    )


def _embedding_plot(person: User) -> object:
    found = collab.embedding_map(highlight=person)
    shown = f"; {len(found.points):,} of {found.total:,} users shown"
    shown = shown if found.total > len(found.points) else ""
    return plots.scatter_chart(
        [
            plots.Point(
                p.x, p.y, f"{p.username} (expert {p.expert})", p.user_id == person.pk, p.expert
            )
            for p in found.points
        ],
        title=f"User embeddings (CoPL, 2 principal components; colour: expert{shown})",
    )


def collab_figures(person: User) -> dict[str, object]:
    """Similar users, how the embedding was obtained and the map, kept ``FIGURE_TTL`` seconds
    per user and active CoPL version: they change only when CoPL runs or adapts a user, and
    they are half of what the page costs (nearest neighbours, a 500-point map)."""
    version = active_version()
    key = f"console:user-collab:{person.pk}:{version.pk if version else 0}"
    found = cache.get(key)
    if found is None:
        found = {
            "similar": collab.similar_users(person),
            "embedding": collab.embedding(person),
            "embedding_plot": _embedding_plot(person),
        }
        cache.set(key, found, FIGURE_TTL)
    return found


def overall_chart(computed_at: float, overall: list, editors: list[User]) -> object:
    """The overall series and the busiest editors' lines, drawn once per computed series and
    set of editors' counters (their 4,000 rounds are not read again until one of them edits)."""
    drawn = ",".join(f"{u.pk}:{u.rounds}:{u.edits}" for u in editors)
    digest = hashlib.sha256(f"{computed_at!r}:{len(overall)}:{drawn}".encode()).hexdigest()
    key = f"console:overall-chart:{digest}"
    found = cache.get(key)
    if found is None:
        found = (_draw_overall_chart(overall, editors),)
        cache.set(key, found, selectors.OVERALL_TTL)
    return found[0]


def _draw_overall_chart(overall: list, editors: list[User]) -> object:
    per_user = selectors.cost_per_round([u.pk for u in editors])
    series = [
        plots.Series(u.username, [(r.round, r.cost) for r in per_user.get(u.pk, [])], width=1)
        for u in editors
    ]
    mean = plots.Series("mean over users", [(r.round, r.cost) for r in overall], "#111827", 3)
    return plots.line_chart(
        [mean, *series],
        title="Edit cost per round, overall and per user",
        x_label="round (each user's n-th edited interaction)",
        y_label="words changed",
    )
