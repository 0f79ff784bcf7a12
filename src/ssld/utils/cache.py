"""Finished work, kept on disk under a key of its inputs and reused while the key still matches.

One JSON file holds one finished unit of work (a pipeline stage's ``done.json``, a transfer grid point, an
ablation row x seed) together with the key of the inputs it was computed from. The file is written atomically
once the work is done, so an interrupted run never leaves a unit that reads as finished; a later run with the
same key reuses the record instead of redoing the work, and one with another key (its inputs changed) redoes it
and overwrites the file.

A key is usually ``input_key(inputs)``, a hash of the inputs; any JSON value works and is compared in its JSON
form (a tuple matches the list it was stored as). Each user names the field that holds the key, so the files
keep the field names they always had (``hash``, ``key``, ``recipe``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssld.utils.io import sha256_json, write_json


def input_key(inputs: Any) -> str:
    """The key of a unit's inputs: sha256 of their canonical JSON (sorted keys)."""
    return sha256_json(inputs)


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class FinishedWork:
    """The record file of one unit of work; ``key_field`` names the field of the record that holds its key."""

    path: Path
    key_field: str = "key"

    @classmethod
    def at(cls, path: str | os.PathLike[str], key_field: str = "key") -> FinishedWork:
        return cls(Path(path), key_field)

    def read(self) -> dict[str, Any] | None:
        """The record whatever its key, or None when the file is missing or unreadable (never finished)."""
        if not self.path.is_file():
            return None
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def matches(self, record: dict[str, Any] | None, key: Any) -> bool:
        """Whether ``record`` (as ``read`` gave it) was computed from inputs with this key."""
        return record is not None and record.get(self.key_field) == _as_json(key)

    def load(self, key: Any) -> dict[str, Any] | None:
        """The record when it was computed from inputs with this key, else None (missing or stale)."""
        record = self.read()
        return record if self.matches(record, key) else None

    def save(self, key: Any, record: dict[str, Any]) -> dict[str, Any]:
        """Write ``record`` under ``key`` atomically and return what was written: the key field stays where
        ``record`` has it, else it comes first."""
        written = {**record, self.key_field: _as_json(key)} if self.key_field in record else \
            {self.key_field: _as_json(key), **record}
        write_json(self.path, written)
        return written

    def reuse_or_run(self, key: Any, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The record of ``key`` if one is on disk, else ``run()``'s record, saved under ``key`` first."""
        record = self.load(key)
        return record if record is not None else self.save(key, run())
