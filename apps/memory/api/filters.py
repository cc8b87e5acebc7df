"""Query filters of the memory list: date range, owner, source, origin and edit."""

from __future__ import annotations

import django_filters

from apps.common.filters import IdFilter, OwnedFilterSet
from apps.memory.models import MemoryEntry


class MemoryEntryFilter(OwnedFilterSet):
    source = django_filters.CharFilter(label="Context source, e.g. news.")
    origin = django_filters.ChoiceFilter(choices=MemoryEntry.Origin.choices)
    edit = IdFilter(field_name="edit_id", label="The edit it was learned from.")

    class Meta:
        model = MemoryEntry
        fields: list[str] = []
