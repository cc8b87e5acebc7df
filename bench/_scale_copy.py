"""COPY text for the scale benchmark's fill, and a filler that times each table.

Each table's non-constraint indexes are dropped before its ``COPY`` and rebuilt afterwards with a
larger ``maintenance_work_mem`` (faster than maintaining them row by row); constraints (unique,
foreign keys) stay, and so do triggers: the apps' statement triggers see every ``COPY``. Columns
the fill does not name get the model field's default (or NULL), so a new column with a default
needs no change in the fill. Sequences are moved past the ids written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np

CHUNK = 20_000
INDEX_MEMORY = "1GB"


def esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def jsonb(value: Any) -> str:
    return esc(json.dumps(value, ensure_ascii=False))


def stamps(seconds: np.ndarray) -> list[str]:
    """Epoch seconds as timestamptz text (UTC)."""
    micro = (seconds * 1e6).astype("datetime64[us]")
    return [s + "+00" for s in np.datetime_as_string(micro, unit="us")]


def vectors(rng: np.random.Generator, n: int, dims: int) -> list[str]:
    """``n`` random unit vectors as pgvector text."""
    found = rng.standard_normal((n, dims), dtype=np.float32)
    found /= np.linalg.norm(found, axis=1, keepdims=True)
    fmt = "[" + ",".join(["%.4f"] * dims) + "]"
    return [fmt % tuple(row) for row in found.tolist()]


def default_cell(model_field: Any) -> str:
    from django.contrib.postgres.fields import ArrayField
    from django.db.models import JSONField

    value = model_field.get_default()
    if value is None:
        if not model_field.null:
            raise ValueError(f"{model_field} is NOT NULL and has no default: the fill must set it")
        return r"\N"
    if isinstance(model_field, ArrayField):
        return "{" + ",".join(str(v) for v in value) + "}"
    if isinstance(model_field, JSONField):
        return jsonb(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    return esc(str(value))


@dataclass
class Filler:
    """COPY into one connection, timing each table (load, index rebuild) and counting rows."""

    conn: Any
    progress: bool = True
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    settle_s: float = 0.0  # VACUUM (ANALYZE) and CHECKPOINT after the load

    def copy(
        self, model: Any, n: int, columns: dict[str, Sequence[str] | str], rebuild: bool = True
    ) -> None:
        """COPY ``n`` rows; ``rebuild``: drop the table's indexes first and build them after
        (not inside a transaction that has deferred constraint checks pending)."""
        from tqdm import tqdm

        table = model._meta.db_table
        concrete = [f for f in model._meta.concrete_fields if not getattr(f, "generated", False)]
        names = [f.column for f in concrete]
        unknown = set(columns) - set(names)
        if unknown:
            raise ValueError(f"{table} has no column(s) {sorted(unknown)}")
        cells = [columns[f.column] if f.column in columns else default_cell(f) for f in concrete]
        began = time.perf_counter()
        dropped = self._drop_indexes(table) if rebuild else []
        sql = f"COPY {table} ({', '.join(names)}) FROM STDIN"
        with self.conn.transaction(), self.conn.cursor().copy(sql) as copy:
            bar = tqdm(total=n, desc=f"fill {table}", unit="row", disable=not self.progress)
            for start in range(0, n, CHUNK):
                stop = min(n, start + CHUNK)
                parts = [
                    repeat(c, stop - start) if isinstance(c, str) else c[start:stop] for c in cells
                ]
                copy.write("".join("\t".join(row) + "\n" for row in zip(*parts, strict=False)))
                bar.update(stop - start)
            bar.close()
        loaded = time.perf_counter()
        index_seconds = self._rebuild(dropped)
        with self.conn.transaction():
            self.conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
            self.conn.execute(f"ANALYZE {table}")
        self.rows[table] = self.rows.get(table, 0) + n
        self.seconds[table] = {
            "load_s": round(loaded - began, 2),
            "indexes_s": round(sum(index_seconds.values()), 2),
            **{f"index {k}_s": round(v, 2) for k, v in index_seconds.items()},
            "total_s": round(time.perf_counter() - began, 2),
        }

    def _drop_indexes(self, table: str) -> list[tuple[str, str]]:
        found = self.conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
            (table,),
        ).fetchall()
        with self.conn.transaction():
            for name, _ in found:
                self.conn.execute(f'DROP INDEX "{name}"')
        return found

    def _rebuild(self, dropped: list[tuple[str, str]]) -> dict[str, float]:
        took = {}
        for name, definition in dropped:
            began = time.perf_counter()
            with self.conn.transaction():
                self.conn.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_MEMORY}'")
                self.conn.execute("SET LOCAL max_parallel_maintenance_workers = 2")
                self.conn.execute(definition)
            took[name] = time.perf_counter() - began
        return took
