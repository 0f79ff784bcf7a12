"""Open a pipeline run: load the pipeline file, check the training configs agree with it, build the stages."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssld.errors import UserError
from ssld.pipeline.config import PipelineConfig, load_pipeline_config
from ssld.pipeline.guard import check_teacher
from ssld.pipeline.runner import Pipeline
from ssld.pipeline.stages import build_stages
from ssld.pipeline.training import frozen_model_index, read_training_yaml


def _arch(p: PipelineConfig, stage: str) -> tuple[Path, dict[str, Any]]:
    sec = getattr(p.pipeline, stage)
    path = p.config_path(sec.config)
    return path, read_training_yaml(path, sec.overrides, f"Pipeline.{stage}").get("Arch") or {}


def check_training_configs(p: PipelineConfig) -> None:
    """Every training config has the pipeline's class count, and baseline/distill/finetune train one student.

    Checked before any stage runs, so a config for the wrong dataset fails in a second, not after the teacher.
    """
    pl = p.pipeline
    stages = ["teacher", "distill"] + [s for s in ("baseline", "finetune", "fixres") if getattr(pl, s) is not None
                                       and getattr(pl, s).enabled]
    archs = {s: _arch(p, s) for s in stages}
    for stage, (path, arch) in archs.items():
        classes = arch.get("class_num", 1000)
        if classes != pl.num_classes:
            raise UserError(f"{path}: Arch.class_num is {classes} but Pipeline.num_classes is {pl.num_classes} "
                            f"(stage {stage})")
    path, distill = archs["distill"]
    if distill.get("name") != "DistillationModel":
        raise UserError(f"{path}: Arch.name: the distill stage needs a DistillationModel config")
    infer = distill.get("infer_model_name")
    models = {next(iter(m)): m[next(iter(m))] for m in distill.get("models") or []}
    frozen_model_index({"Arch": distill})
    student = models.get(infer) if infer else list(models.values())[-1]
    if student is None:
        raise UserError(f"{path}: Arch.infer_model_name: '{infer}' is not one of the models")
    from ssld.models.names import resolve_model_name

    want = resolve_model_name(str(student.get("name")))
    for stage in ("baseline", "finetune", "fixres"):
        if stage in archs and resolve_model_name(str(archs[stage][1].get("name"))) != want:
            raise UserError(f"{archs[stage][0]}: Arch.name is '{archs[stage][1].get('name')}' but the distilled "
                            f"student is '{student.get('name')}': the {stage} stage must train the same network")


def default_run_dir(p: PipelineConfig) -> Path:
    """``runs/<name>-<profile>-s<seed>``."""
    return Path("runs") / f"{p.pipeline.name}-{p.profile or 'default'}-s{p.pipeline.seed}"


def open_pipeline(
    config: str | os.PathLike[str],
    profile: str | None = None,
    seed: int | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    reuse_from: Sequence[str | os.PathLike[str]] = (),
    extra: dict[str, Any] | None = None,
    allow_weak_teacher: bool = False,
) -> Pipeline:
    """A ready-to-run :class:`Pipeline` for a pipeline file (``extra`` is deep-merged onto ``Pipeline``).
    ``allow_weak_teacher`` lets a teacher that fails the guard go on (with a warning)."""
    p = load_pipeline_config(config, profile=profile, seed=seed, extra=extra)
    check_training_configs(p)
    identity = {"source": str(config), "profile": profile, "pipeline": p.pipeline.identity()}
    guard = p.pipeline.guard
    if allow_weak_teacher:
        guard = guard.model_copy(update={"allow_weak_teacher": True})
    gates = {"baseline": lambda run: check_teacher(run, guard)} if guard.enabled else {}
    return Pipeline(run_dir or default_run_dir(p), build_stages(p), identity, force=force, reuse_from=reuse_from,
                    gates=gates)
