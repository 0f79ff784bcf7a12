"""What a stage leaves on disk: ``done.json`` (finished), ``started.json`` (interrupted), output hashes.

Both files are ``ssld.utils.cache`` records keyed by the stage's input hash (field ``hash``): ``done.json`` is
the finished unit of work, ``started.json`` marks one under way that may resume while the hash matches."""

from __future__ import annotations

import resource
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ssld.utils.cache import FinishedWork
from ssld.utils.io import sha256_file

DONE = "done.json"
STARTED = "started.json"
IDENTITY = "pipeline.json"


def done_work(stage_dir: Path) -> FinishedWork:
    """The stage's ``done.json``: its finished record, keyed by the stage's input hash."""
    return FinishedWork(stage_dir / DONE, key_field="hash")


def started_work(stage_dir: Path) -> FinishedWork:
    """The stage's ``started.json``: the input hash of the attempt under way (an interrupted one resumes from it)."""
    return FinishedWork(stage_dir / STARTED, key_field="hash")


def read_done(stage_dir: Path) -> dict[str, Any] | None:
    """The stage's ``done.json`` record, or None when the stage never finished."""
    return done_work(stage_dir).read()


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
