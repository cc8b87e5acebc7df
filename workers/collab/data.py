"""The preference dataset file: one JSON object per line (JSONL), torch-free.

Each line holds ``user_id``, ``prompt``, ``chosen``, ``rejected`` (strings; ``prompt`` may be empty)
and ``split``, one of ``train`` / ``test`` (seen users) or ``unseen_train`` / ``unseen_test``
(users kept out of training, who only give a few ratings). An optional ``group`` (string or null)
names the user's latent group when it is known, as in generated data; other keys are ignored.

Loading checks every line and the file as a whole and raises :class:`DatasetError`, whose message
names the file, the line number and the field at fault.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

Split = Literal["train", "test", "unseen_train", "unseen_test"]
SPLITS: tuple[str, ...] = ("train", "test", "unseen_train", "unseen_test")
SEEN_SPLITS: frozenset[str] = frozenset({"train", "test"})
UNSEEN_SPLITS: frozenset[str] = frozenset({"unseen_train", "unseen_test"})
_REQUIRED: tuple[str, ...] = ("user_id", "prompt", "chosen", "rejected", "split")


class DatasetError(ValueError):
    """A preference file or record that breaks the format; ``line`` is 1-based (0 if unknown)."""

    def __init__(self, message: str, *, line: int = 0, field: str | None = None, source: str = ""):
        where = ", ".join(
            part
            for part in (
                source,
                f"line {line}" if line else "",
                f"field {field!r}" if field else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.line = line
        self.field = field
        self.source = source


@dataclass(frozen=True)
class PreferencePair:
    """One comparison: ``user_id`` preferred ``chosen`` to ``rejected`` as answers to ``prompt``."""

    user_id: str
    prompt: str
    chosen: str
    rejected: str
    split: Split
    group: str | None = None


@dataclass(frozen=True)
class PreferenceDataset:
    """All pairs of a preference file, in file order, with per-split and per-user views."""

    pairs: tuple[PreferencePair, ...]

    def split(self, *names: str) -> list[PreferencePair]:
        """The pairs whose split is one of ``names``, in file order."""
        unknown = set(names) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)}; choose from {SPLITS}")
        return [p for p in self.pairs if p.split in names]

    def users(self, *splits: str) -> list[str]:
        """User ids with at least one pair in ``splits`` (all splits if none), first-seen order."""
        chosen = set(splits or SPLITS)
        return list(dict.fromkeys(p.user_id for p in self.pairs if p.split in chosen))

    def by_user(self, *splits: str) -> dict[str, list[PreferencePair]]:
        """The pairs of ``splits`` (all if none) grouped by user, users in first-seen order."""
        chosen = set(splits or SPLITS)
        grouped: dict[str, list[PreferencePair]] = defaultdict(list)
        for pair in self.pairs:
            if pair.split in chosen:
                grouped[pair.user_id].append(pair)
        return dict(grouped)

    def groups(self) -> dict[str, str]:
        """User id -> latent group, for the users whose pairs name one."""
        return {p.user_id: p.group for p in self.pairs if p.group is not None}

    def __len__(self) -> int:
        return len(self.pairs)


def parse_record(record: object, *, line: int = 0, source: str = "") -> PreferencePair:
    """Check one decoded JSON value and turn it into a :class:`PreferencePair`."""
    if not isinstance(record, Mapping):
        raise DatasetError("expected a JSON object", line=line, source=source)
    for name in _REQUIRED:
        if name not in record:
            raise DatasetError("missing required field", line=line, field=name, source=source)
        if not isinstance(record[name], str):
            kind = type(record[name]).__name__
            raise DatasetError(
                f"must be a string, got {kind}", line=line, field=name, source=source
            )
    for name in ("user_id", "chosen", "rejected"):
        if not record[name].strip():
            raise DatasetError("must not be empty", line=line, field=name, source=source)
    if record["split"] not in SPLITS:
        message = f"unknown split {record['split']!r}; choose one of {', '.join(SPLITS)}"
        raise DatasetError(message, line=line, field="split", source=source)
    if record["chosen"] == record["rejected"]:
        raise DatasetError(
            "is the same text as 'chosen'", line=line, field="rejected", source=source
        )
    group = record.get("group")
    if group is not None and not isinstance(group, str):
        kind = type(group).__name__
        message = f"must be a string or null, got {kind}"
        raise DatasetError(message, line=line, field="group", source=source)
    return PreferencePair(
        user_id=record["user_id"],
        prompt=record["prompt"],
        chosen=record["chosen"],
        rejected=record["rejected"],
        split=record["split"],
        group=group,
    )


def validate_pairs(
    pairs: Sequence[PreferencePair], lines: Sequence[int] | None = None, source: str = ""
) -> None:
    """File-level checks: a user is either seen (train/test) or unseen (unseen_*), never both; a
    seen user has train pairs; an unseen user with test pairs has unseen_train pairs; a user has
    one group at most. ``lines`` gives each pair's line number for the error messages."""
    numbers = list(lines) if lines is not None else list(range(1, len(pairs) + 1))
    first_line: dict[str, int] = {}
    kinds: dict[str, set[str]] = defaultdict(set)
    group_of: dict[str, tuple[str, int]] = {}
    for pair, number in zip(pairs, numbers, strict=True):
        first_line.setdefault(pair.user_id, number)
        kind = "seen" if pair.split in SEEN_SPLITS else "unseen"
        if kinds[pair.user_id] and kind not in kinds[pair.user_id]:
            message = (
                f"user {pair.user_id!r} has both seen (train/test) and unseen (unseen_*) pairs; "
                f"first pair on line {first_line[pair.user_id]}"
            )
            raise DatasetError(message, line=number, field="split", source=source)
        kinds[pair.user_id].add(kind)
        if pair.group is not None:
            known = group_of.setdefault(pair.user_id, (pair.group, number))
            if known[0] != pair.group:
                message = f"user {pair.user_id!r} is in group {known[0]!r} on line {known[1]}"
                raise DatasetError(message, line=number, field="group", source=source)
    splits_of: dict[str, set[str]] = defaultdict(set)
    for pair in pairs:
        splits_of[pair.user_id].add(pair.split)
    for user, splits in splits_of.items():
        if "test" in splits and "train" not in splits:
            message = f"seen user {user!r} has test pairs but no train pairs"
            raise DatasetError(message, line=first_line[user], field="split", source=source)
        if "unseen_test" in splits and "unseen_train" not in splits:
            message = f"unseen user {user!r} has unseen_test pairs but no unseen_train pairs"
            raise DatasetError(message, line=first_line[user], field="split", source=source)


def _numbered_records(lines: Iterable[str], source: str) -> Iterator[tuple[int, object]]:
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except json.JSONDecodeError as error:
            raise DatasetError(
                f"not valid JSON ({error.msg})", line=number, source=source
            ) from None


def parse_lines(lines: Iterable[str], source: str = "") -> PreferenceDataset:
    """Parse and validate JSONL text lines (blank lines are skipped)."""
    pairs: list[PreferencePair] = []
    numbers: list[int] = []
    for number, record in _numbered_records(lines, source):
        pairs.append(parse_record(record, line=number, source=source))
        numbers.append(number)
    if not pairs:
        raise DatasetError("the file holds no pairs", source=source)
    validate_pairs(pairs, numbers, source=source)
    return PreferenceDataset(tuple(pairs))


def load_jsonl(path: str | Path) -> PreferenceDataset:
    """Read and validate a preference file; :class:`DatasetError` names the line and field."""
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        return parse_lines(handle, source=str(path))


def save_jsonl(pairs: Iterable[PreferencePair], path: str | Path) -> Path:
    """Write pairs as JSONL (UTF-8, one object per line; ``group`` only when known)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for pair in pairs:
            record = {k: v for k, v in asdict(pair).items() if k != "group" or v is not None}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
