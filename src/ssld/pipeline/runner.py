"""A resumable stage graph: each stage writes ``RUN/<stage>/`` and ends with ``done.json``.

A stage's *hash* covers what it was computed from: its settings, the content of its input files and the
*fingerprints* of the stages it depends on (a fingerprint covers a stage's hash and the content of its declared
outputs). On a rerun a stage is skipped when its ``done.json`` hash still matches; it is run again when its
settings, input files or any upstream output changed, which in turn changes its own fingerprint and so every stage
after it. A stage killed half-way left ``started.json`` (its hash) and resumes in place when the hash still
matches; otherwise its directory is cleared first. ``done.json`` is written last and atomically, so Ctrl-C never
leaves a stage that looks finished but is not. Both files are ``ssld.utils.cache`` records keyed by the hash
(``pipeline.records``), the mechanism transfer and ablate cache their finished work with.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssld.errors import UserError
from ssld.pipeline.records import (
    IDENTITY,
    cpu_seconds,
    done_work,
    hash_outputs,
    read_done,
    remove_stage_dir,
    started_work,
)
from ssld.pipeline.status import StageRow, format_status
from ssld.utils.cache import input_key
from ssld.utils.io import sha256_file, sha256_json, write_json

log = logging.getLogger("ssld.pipeline")



@dataclass
class StageContext:
    """What a running stage sees: its directory, the run directory and its upstream ``done.json`` records."""

    name: str
    dir: Path
    run_dir: Path
    settings: dict[str, Any]
    upstream: dict[str, dict[str, Any]]
    resume: bool

    def stage_dir(self, name: str) -> Path:
        """Directory of another stage of the same run."""
        return self.run_dir / name


@dataclass
class StageResult:
    """What a stage returns: metrics for ``done.json`` and the files (relative to its dir) that define its output."""

    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)


@dataclass
class Stage:
    """One step of the pipeline.

    ``settings`` (JSON-serialisable) and the content of ``input_files`` go into the stage's hash; ``deps`` names
    the stages whose outputs it reads; ``key_metric`` names the metric shown in the status table.
    """

    name: str
    run: Callable[[StageContext], StageResult]
    deps: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    input_files: tuple[str, ...] = ()
    key_metric: str | None = None



class Pipeline:
    """Runs stages in order inside ``run_dir``, skipping finished ones and resuming interrupted ones.

    ``identity`` (the resolved pipeline config) is stored in ``RUN/pipeline.json``; a run directory made with
    another identity is refused unless ``force``. ``reuse_from`` lists other run directories whose finished
    stages may be linked in when their hash matches (the ablations share teachers and labels that way).
    ``gates`` maps a stage name to a check of the run directory (the teacher guard) that runs once, before the
    first stage after that one does any work; a check that raises stops the run there.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        stages: Sequence[Stage],
        identity: dict[str, Any],
        force: bool = False,
        reuse_from: Sequence[str | os.PathLike[str]] = (),
        out: Callable[[str], None] = print,
        gates: dict[str, Callable[[Path], object]] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.stages = list(stages)
        self.by_name = {s.name: s for s in self.stages}
        self.identity = identity
        self.force = force
        self.reuse_from = [Path(p) for p in reuse_from]
        self.out = out
        self._elapsed: dict[str, float] = {}
        self._file_hashes: dict[tuple[str, int, int], str] = {}
        self._hashes: dict[str, str | None] = {}
        self.gates = dict(gates or {})
        self._gates_passed: set[str] = set()
        self._check_graph()

    def _check_graph(self) -> None:
        seen: set[str] = set()
        for s in self.stages:
            missing = [d for d in s.deps if d not in seen]
            if missing:
                raise ValueError(f"stage {s.name} depends on {missing}, which do not come before it")
            seen.add(s.name)

    # ----------------------------------------------------------------------------------------- hashing & state

    def stage_hash(self, stage: Stage) -> str | None:
        """The stage's input hash, or None while an upstream stage is unfinished or stale (memoized until a
        stage finishes: the recursion over upstream states would otherwise repeat for every path)."""
        if stage.name not in self._hashes:
            self._hashes[stage.name] = self._compute_hash(stage)
        return self._hashes[stage.name]

    def _compute_hash(self, stage: Stage) -> str | None:
        upstream = {}
        for dep in stage.deps:
            if self.state(self.by_name[dep]) != "done":
                return None
            record = read_done(self.run_dir / dep)
            upstream[dep] = record["fingerprint"] if record else None
        files = {Path(f).name: self._file_hash(stage, f) for f in stage.input_files}
        return input_key({"stage": stage.name, "settings": stage.settings, "upstream": upstream, "files": files})

    def _file_hash(self, stage: Stage, path: str) -> str:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"stage {stage.name}: input file {p} not found")
        st = p.stat()
        key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
        if key not in self._file_hashes:
            self._file_hashes[key] = sha256_file(p)
        return self._file_hashes[key]

    def state(self, stage: Stage) -> str:
        """``done`` (finished, inputs unchanged), ``stale`` (finished from other inputs), ``partial`` (interrupted)
        or ``pending``."""
        d = self.run_dir / stage.name
        done = done_work(d)
        record = done.read()
        if record is not None:
            return "done" if done.matches(record, self.stage_hash(stage)) else "stale"
        return "partial" if started_work(d).path.is_file() else "pending"

    def rows(self) -> list[StageRow]:
        """One status row per stage (from the files on disk now)."""
        self._hashes.clear()
        rows = []
        for s in self.stages:
            record = read_done(self.run_dir / s.name) or {}
            state = self.state(s)
            metric = record.get("metrics", {}).get(s.key_metric) if s.key_metric and state == "done" else None
            seconds = self._elapsed.get(s.name, record.get("wall_time_s") if state == "done" else None)
            rows.append(StageRow(s.name, state, seconds, s.key_metric, metric))
        return rows

    def print_status(self, title: str) -> None:
        self.out(format_status(self.rows(), title=f"{title} ({self.run_dir})"))

    # ------------------------------------------------------------------------------------------------ identity

    def _check_identity(self) -> None:
        path = self.run_dir / IDENTITY
        digest = sha256_json({k: v for k, v in self.identity.items() if k != "source"})
        if path.is_file():
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError):
                stored = {}
            if stored.get("hash") != digest and not self.force:
                made_by = stored.get("identity", {}).get("source", "an unknown config")
                raise UserError(
                    f"--run-dir {self.run_dir}: made by another config ({made_by}); pass --force to reuse it "
                    "(stages whose inputs changed are rerun) or choose another --run-dir"
                )
        write_json(path, {"hash": digest, "identity": self.identity})

    # ---------------------------------------------------------------------------------------------------- run

    def _selected(self, only: str | None, start: str | None) -> tuple[list[Stage], set[str]]:
        """Stages to visit and the subset to rerun even if finished."""
        for opt, name in (("--only", only), ("--from", start)):
            if name is not None and name not in self.by_name:
                raise UserError(f"{opt} {name}: unknown or disabled stage; stages: {', '.join(self.by_name)}")
        if only is not None:
            return [self.by_name[only]], {only}
        if start is not None:
            names = [s.name for s in self.stages]
            forced = names[names.index(start):]
            return self.stages, set(forced)
        return self.stages, set()

    def run(self, only: str | None = None, start: str | None = None) -> list[StageRow]:
        """Run the pipeline (all stages, ``--only`` one, or ``--from`` one on). Returns the final status rows."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._hashes.clear()
        self._gates_passed.clear()
        self._check_identity()
        visit, forced = self._selected(only, start)
        self.print_status("pipeline status")
        try:
            for stage in visit:
                self._run_stage(stage, forced=stage.name in forced)
        finally:
            self.print_status("pipeline status")
        return self.rows()

    def _missing_dep_error(self, stage: Stage) -> UserError:
        for dep in stage.deps:
            if self.state(self.by_name[dep]) != "done":
                why = "has not run" if self.state(self.by_name[dep]) == "pending" else "is unfinished or stale"
                return UserError(
                    f"stage {stage.name} needs the outputs of stage {dep}, which {why} in {self.run_dir}: "
                    f"run it first (--from {dep} or --only {dep})"
                )
        return UserError(f"stage {stage.name}: upstream stages are not finished")

    def _run_stage(self, stage: Stage, forced: bool) -> None:
        digest = self.stage_hash(stage)
        if digest is None:
            raise self._missing_dep_error(stage)
        d = self.run_dir / stage.name
        done, started = done_work(d), started_work(d)
        if not forced and done.load(digest) is not None:
            log.info("%s: done, inputs unchanged: skipped", stage.name)
            return
        self._pass_gates(stage)
        if not forced and self._try_reuse(stage, digest):
            return
        # an interrupted stage resumes when its inputs are unchanged, also under --only/--from (they force
        # finished stages to rerun; an unfinished one has nothing to redo)
        resume = done.read() is None and started.load(digest) is not None
        if not resume:
            remove_stage_dir(d)
        d.mkdir(parents=True, exist_ok=True)
        if not resume:
            started.save(digest, {"started_at": time.time()})
        log.info("%s: %s", stage.name, "resuming" if resume else "running")
        upstream = {dep: read_done(self.run_dir / dep) or {} for dep in stage.deps}
        ctx = StageContext(stage.name, d, self.run_dir, stage.settings, upstream, resume)
        t0, cpu0 = time.time(), cpu_seconds()
        result = stage.run(ctx)
        wall, cpu = time.time() - t0, cpu_seconds() - cpu0
        outputs = hash_outputs(d, result.outputs)
        record = {
            "stage": stage.name,
            "hash": digest,
            "fingerprint": sha256_json({"hash": digest, "outputs": outputs}),
            "settings": stage.settings,
            "upstream": {dep: rec.get("fingerprint") for dep, rec in upstream.items()},
            "outputs": outputs,
            "metrics": result.metrics,
            "key_metric": stage.key_metric,
            "wall_time_s": round(wall, 2),
            "cpu_time_s": round(cpu, 2),
            "resumed": resume,
            "finished_at": time.time(),
        }
        done.save(digest, record)
        started.path.unlink(missing_ok=True)
        self._hashes.clear()
        self._elapsed[stage.name] = wall

    def _pass_gates(self, stage: Stage) -> None:
        """Run each gate of a stage before this one (once per run) when that stage is finished."""
        names = [s.name for s in self.stages]
        for gate_stage, check in self.gates.items():
            if gate_stage in self._gates_passed or gate_stage not in self.by_name:
                continue
            if names.index(gate_stage) < names.index(stage.name) and read_done(self.run_dir / gate_stage):
                check(self.run_dir)
                self._gates_passed.add(gate_stage)

    def _try_reuse(self, stage: Stage, digest: str) -> bool:
        """Link a finished stage with the same hash from another run directory instead of recomputing it."""
        for other in self.reuse_from:
            src = other / stage.name
            if src.resolve() == (self.run_dir / stage.name).resolve():
                continue
            if done_work(src).load(digest) is not None:
                dst = self.run_dir / stage.name
                remove_stage_dir(dst)
                dst.symlink_to(src.resolve(), target_is_directory=True)
                self._hashes.clear()
                log.info("%s: reused from %s", stage.name, src)
                return True
        return False

