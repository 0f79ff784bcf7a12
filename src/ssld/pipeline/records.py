"""What a stage leaves on disk: ``done.json`` (finished), ``started.json`` (interrupted), output hashes."""

from __future__ import annotations

import json
import resource
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ssld.utils.io import sha256_file

DONE = "done.json"
STARTED = "started.json"
IDENTITY = "pipeline.json"


def read_done(stage_dir: Path) -> dict[str, Any] | None:
    """The stage's ``done.json`` record, or None when the stage never finished."""
    path = stage_dir / DONE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def hash_outputs(stage_dir: Path, outputs: Iterable[str]) -> dict[str, str]:
    """sha256 of each declared output file (relative to the stage directory)."""
    hashes: dict[str, str] = {}
    for rel in outputs:
        path = stage_dir / rel
        if not path.is_file():
            raise RuntimeError(f"stage {stage_dir.name} declared output {rel} but did not write it")
        hashes[rel] = sha256_file(path)
    return hashes


def remove_stage_dir(path: Path) -> None:
    """Clear a stage directory; a symlink (a stage reused from another run) is unlinked, never followed."""
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (data-loader workers): a machine-load-independent
    measure of a stage's cost next to its wall time."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def read_hash(path: Path) -> str | None:
    """The input hash recorded in a ``started.json`` (None when unreadable)."""
    try:
        return json.loads(path.read_text()).get("hash")
    except (OSError, ValueError):
        return None
