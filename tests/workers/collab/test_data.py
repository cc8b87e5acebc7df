"""The JSONL preference file: round trip, and errors that name the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.collab.data import (
    DatasetError,
    PreferencePair,
    load_jsonl,
    parse_lines,
    save_jsonl,
)


def record(**overrides: object) -> dict:
    base = {"user_id": "u1", "prompt": "p", "chosen": "a", "rejected": "b", "split": "train"}
    return {**base, **overrides}


def lines(*records: object) -> list[str]:
    return [json.dumps(r) for r in records]


def test_round_trip(tmp_path: Path) -> None:
    pairs = [
        PreferencePair("u1", "p", "a", "b", "train", "g1"),
        PreferencePair("u1", "", "c", "d", "test", "g1"),
        PreferencePair("u2", "p", "a", "b", "unseen_train"),
        PreferencePair("u2", "p", "e", "f", "unseen_test"),
    ]
    loaded = load_jsonl(save_jsonl(pairs, tmp_path / "data.jsonl"))
    assert list(loaded.pairs) == pairs
    assert loaded.users("train", "test") == ["u1"]
    assert loaded.groups() == {"u1": "g1"}
    assert [p.chosen for p in loaded.split("unseen_test")] == ["e"]


@pytest.mark.parametrize(
    ("bad", "line", "field", "words"),
    [
        ("{not json", 2, None, "not valid JSON"),
        (json.dumps([1, 2]), 2, None, "JSON object"),
        (json.dumps({k: v for k, v in record().items() if k != "chosen"}), 2, "chosen", "missing"),
        (json.dumps(record(rejected=3)), 2, "rejected", "must be a string"),
        (json.dumps(record(split="dev")), 2, "split", "unknown split"),
        (json.dumps(record(user_id=" ")), 2, "user_id", "empty"),
        (json.dumps(record(rejected="a")), 2, "rejected", "same text"),
        (json.dumps(record(group=5)), 2, "group", "string or null"),
    ],
)
def test_record_errors_name_line_and_field(
    bad: str, line: int, field: str | None, words: str
) -> None:
    with pytest.raises(DatasetError) as caught:
        parse_lines([json.dumps(record()), bad], source="f.jsonl")
    assert caught.value.line == line
    assert caught.value.field == field
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"f.jsonl, line {line}")


def test_blank_lines_are_skipped_and_keep_numbering() -> None:
    with pytest.raises(DatasetError) as caught:
        parse_lines([json.dumps(record()), "", json.dumps(record(split="x"))])
    assert caught.value.line == 3


def test_user_cannot_be_seen_and_unseen() -> None:
    with pytest.raises(DatasetError) as caught:
        parse_lines(lines(record(), record(split="unseen_train")))
    assert caught.value.line == 2 and caught.value.field == "split"
    assert "both seen" in str(caught.value)


def test_test_pairs_need_train_pairs() -> None:
    with pytest.raises(DatasetError, match="no train pairs"):
        parse_lines(lines(record(split="test")))
    with pytest.raises(DatasetError, match="no unseen_train pairs"):
        parse_lines(lines(record(split="unseen_test")))


def test_a_user_has_one_group() -> None:
    with pytest.raises(DatasetError) as caught:
        parse_lines(lines(record(group="a"), record(group="b", chosen="c")))
    assert caught.value.line == 2 and caught.value.field == "group"


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(DatasetError, match="no pairs"):
        load_jsonl(path)
