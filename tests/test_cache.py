"""The one cache mechanism under the pipeline runner, transfer and ablate: a record is reused only under the key it
was saved with, a failed unit of work leaves nothing that reads as finished, and the files keep their fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssld.utils.cache import FinishedWork, input_key


def test_a_record_is_reused_only_under_its_key(tmp_path: Path) -> None:
    work = FinishedWork(tmp_path / "unit.json")
    assert work.read() is None and work.load("a") is None
    work.save("a", {"top1": 0.5})
    assert work.load("a") == {"key": "a", "top1": 0.5}
    assert work.load("b") is None and work.read() == {"key": "a", "top1": 0.5}
    assert work.matches(work.read(), "a") and not work.matches(None, "a")


def test_run_happens_once_per_key(tmp_path: Path) -> None:
    work, calls = FinishedWork(tmp_path / "sub" / "unit.json", key_field="hash"), []

    def run() -> dict:
        calls.append(1)
        return {"n": len(calls)}

    assert work.reuse_or_run("k1", run) == {"hash": "k1", "n": 1}
    assert work.reuse_or_run("k1", run) == {"hash": "k1", "n": 1} and len(calls) == 1
    assert work.reuse_or_run("k2", run) == {"hash": "k2", "n": 2}  # inputs changed: run again, overwrite
    assert json.loads(work.path.read_text()) == {"hash": "k2", "n": 2}


def test_a_failed_run_leaves_no_record(tmp_path: Path) -> None:
    work = FinishedWork(tmp_path / "unit.json")

    def fail() -> dict:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        work.reuse_or_run("k", fail)
    assert list(tmp_path.iterdir()) == []


def test_json_keys_match_what_was_stored(tmp_path: Path) -> None:
    """A key with tuples (a transfer setting's lr_mult) matches the lists it reads back as."""
    work = FinishedWork(tmp_path / "unit.json")
    key = {"setting": [0.1, (0.25, 0.5), 1e-4], "init": "abc"}
    work.save(key, {"report": {"top1": 0.9}})
    assert work.load(dict(key))["report"] == {"top1": 0.9}
    assert work.load({**key, "init": "abd"}) is None


def test_unreadable_or_foreign_files_read_as_unfinished(tmp_path: Path) -> None:
    for name, text in (("half.json", '{"key": "a", "to'), ("list.json", "[1, 2]"), ("empty.json", "")):
        (tmp_path / name).write_text(text)
        assert FinishedWork(tmp_path / name).read() is None and FinishedWork(tmp_path / name).load("a") is None


def test_the_key_field_keeps_its_place(tmp_path: Path) -> None:
    """A record that names its key field keeps its field order (the pipeline's done.json: stage, hash, ...)."""
    work = FinishedWork(tmp_path / "done.json", key_field="hash")
    work.save("h", {"stage": "data", "hash": "h", "metrics": {}})
    assert list(json.loads(work.path.read_text())) == ["stage", "hash", "metrics"]
    work.save("h2", {"metrics": {}})
    assert list(json.loads(work.path.read_text())) == ["hash", "metrics"]


def test_input_key_is_a_canonical_hash() -> None:
    assert input_key({"a": 1, "b": [1, 2]}) == input_key({"b": [1, 2], "a": 1})
    assert input_key({"a": 1}) != input_key({"a": 2}) and len(input_key({})) == 64
