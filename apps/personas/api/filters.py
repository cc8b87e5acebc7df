"""Query filters of the persona list: owner (staff: ``?user_id=ID``) and date range."""

from __future__ import annotations

from apps.common.filters import OwnedFilterSet
from apps.personas.models import PersonaProfile


class PersonaFilter(OwnedFilterSet):
    class Meta:
        model = PersonaProfile
        fields: list[str] = []
