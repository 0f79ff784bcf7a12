"""The pipeline file: which data, which training config per stage, and the quick/full profiles.

A pipeline YAML has a ``Pipeline`` section (one sub-section per stage) and an optional ``Profiles`` section whose
entries are deep-merged onto ``Pipeline`` (``--profile quick``). Training stages point at ordinary training
configs (``config: teacher.yaml``, relative to the pipeline file) and change them with ``overrides``
(``{Global.epochs: 30}``, the same key paths as ``ssld train -o``). Mistakes are one line naming the key path.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ssld.config.loader import read_yaml, validation_error_line
from ssld.errors import UserError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataStage(_Strict):
    """Where the labeled set, the unlabeled pool and val come from."""

    source: Literal["fashion_mnist", "lists"] = "fashion_mnist"
    idx_dir: str | None = Field(None, description="Fashion-MNIST IDX folder (default: the apt package's)")
    labeled_per_class: int = Field(200, ge=1)
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the labeled/pool split (fixed across training seeds)")
    pool_size: int | None = Field(None, ge=0, description="random subset of the unlabeled pool (quick runs)")
    val_size: int | None = Field(None, ge=1)
    image_root: str | None = Field(None, description="source: lists — root the list paths are relative to")
    labeled: str | None = Field(None, description="source: lists — labeled train list")
    unlabeled: str | None = Field(None, description="source: lists — unlabeled pool list")
    val: str | None = Field(None, description="source: lists — validation list")
    teacher_extra_per_class: int = Field(0, ge=0, description=(
        "fashion_mnist: labeled train images per class that only the teacher trains on, besides the labeled set "
        "(drawn from outside the labeled set and the pool): a teacher that has seen more data than the student, "
        "as SSLD's teachers have"))
    teacher_labeled: str | None = Field(None, description="source: lists — the teacher's labeled list (default: "
                                                          "labeled)")

    @model_validator(mode="after")
    def _lists(self) -> DataStage:
        if self.source == "lists":
            missing = [k for k in ("image_root", "labeled", "unlabeled", "val") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"source: lists needs {', '.join(missing)}")
            if self.teacher_extra_per_class:
                raise ValueError("teacher_extra_per_class is for source: fashion_mnist; with lists, give the "
                                 "teacher's list as teacher_labeled")
        elif self.teacher_extra_per_class and self.pool_size is None:
            raise ValueError("teacher_extra_per_class needs pool_size: without it every unlabeled train image is "
                             "in the pool and the teacher's extra images would be in it too")
        return self

    @property
    def separate_teacher_set(self) -> bool:
        """Whether the teacher trains on its own list (``train_teacher.txt``) instead of the labeled set."""
        return bool(self.teacher_extra_per_class or self.teacher_labeled)


class TrainStage(_Strict):
    """A training stage: a training config plus overrides (``{key.path: value}``)."""

    config: str
    overrides: dict[str, Any] = Field(default_factory=dict)


class OptionalTrainStage(TrainStage):
    """A training stage the pipeline can leave out (``enabled: false``)."""

    enabled: bool = True


class DistillStage(TrainStage):
    """Student <- frozen teacher. ``offline_teacher``: label the distill list once with the teacher (eval mode,
    un-augmented images, a soft-label store in ``distill/store``) and train on those targets instead of running
    the teacher every step: several times the steps per minute, at the cost the docs describe (targets
    do not follow the student's crop; teacher BN train mode does not apply)."""

    offline_teacher: bool = False


class BaselineStage(OptionalTrainStage):
    """The labels-only student: lr picked on a split of the labeled data, trained for at least distill+finetune
    optimizer steps."""

    lr_grid: list[float] = Field(default_factory=lambda: [0.05, 0.1, 0.2], min_length=1)
    holdout_fraction: float = Field(0.2, gt=0, lt=1)
    grid_steps_fraction: float = Field(0.5, gt=0, le=1, description="grid runs' share of the final step budget")


class DedupStage(_Strict):
    enabled: bool = True
    options: dict[str, Any] = Field(default_factory=dict, description="`ssld dedup` options, e.g. {sim_min: 0.92, knn: 8}")


class LabelStage(_Strict):
    batch_size: int = Field(256, ge=1)
    topk: int = Field(10, ge=1)
    shard_size: int = Field(8192, ge=1)


class SelectStage(_Strict):
    enabled: bool = True
    k: int = Field(2000, ge=1, description="images kept per class")
    min_score: float = Field(0.0, ge=0, le=1)
    multi_class: bool = False


class EvalStage(_Strict):
    batch_size: int = Field(256, ge=1)


class ExportStage(_Strict):
    enabled: bool = True
    formats: list[Literal["onnx", "torchscript"]] = Field(default_factory=lambda: ["onnx", "torchscript"])


class ReportStage(_Strict):
    enabled: bool = True


class GuardSection(_Strict):
    """The teacher guard: after the teacher and baseline stages, the teacher must beat the labels-only student on
    the baseline's held-out labeled images (never val) by ``min_margin`` points, or the pipeline stops."""

    enabled: bool = True
    min_margin: float = Field(1.0, ge=-100, le=100, description="points (top-1 %) the teacher must be above the "
                                                                  "labels-only student on the holdout")
    allow_weak_teacher: bool = Field(False, description="go on (with a warning) when the teacher is not clearly "
                                                        "better (same as --allow-weak-teacher)")
    hold_out_from_teacher: bool = Field(False, description="a teacher that trains on the labeled set leaves the "
                                                           "baseline's held-out images out, so the guard scores it on "
                                                           "images it never saw (ssld init writes true)")


class BudgetSection(_Strict):
    """Budgets that follow the data, for training stages whose pipeline entry sets no ``Global.epochs``: the
    distill stage trains at least ``distill_min_steps`` optimizer steps (and ``distill_min_epochs`` epochs) over
    its list, the teacher at least as many steps as the labels-only baseline gets (distill + finetune)."""

    auto: bool = True
    distill_min_steps: int = Field(1500, ge=1)
    distill_min_epochs: int = Field(10, ge=1)


class PipelineSection(_Strict):
    """The ``Pipeline`` section."""

    name: str = "ssld"
    num_classes: int = Field(ge=2)
    seed: int = Field(0, ge=0, le=2**32 - 1, description="training seed (Global.seed of every stage)")
    data: DataStage = Field(default_factory=DataStage)
    teacher: TrainStage
    baseline: BaselineStage | None = None
    dedup: DedupStage = Field(default_factory=DedupStage)
    label: LabelStage = Field(default_factory=LabelStage)
    select: SelectStage = Field(default_factory=SelectStage)
    distill: DistillStage
    finetune: OptionalTrainStage | None = None
    fixres: OptionalTrainStage | None = Field(None, description="FixRes classifier finetune at 1.15x resolution")
    eval: EvalStage = Field(default_factory=EvalStage)
    export: ExportStage = Field(default_factory=ExportStage)
    report: ReportStage = Field(default_factory=ReportStage)
    guard: GuardSection = Field(default_factory=GuardSection)
    budget: BudgetSection = Field(default_factory=BudgetSection)

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run: the section without the guard (a check, not a computation) and
        without ``budget`` while it is at its defaults (so run folders made before it existed stay valid)."""
        out = self.model_dump(exclude={"guard"})
        if self.budget == BudgetSection():
            out.pop("budget")
        return out


class PipelineConfig(_Strict):
    """A resolved pipeline: the section with the chosen profile applied, and where it came from."""

    source: str
    base_dir: str
    profile: str | None
    pipeline: PipelineSection

    def config_path(self, stage_config: str) -> Path:
        """A stage's training config path, resolved against the pipeline file's folder."""
        p = Path(stage_config)
        return p if p.is_absolute() else Path(self.base_dir) / p


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` merged into a copy of ``base``: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _validate(data: dict[str, Any], where: str, lines: dict[Any, int]) -> PipelineSection:
    try:
        return PipelineSection.model_validate(data)
    except ValidationError as e:
        raise UserError(validation_error_line(e, where, lines)) from None


def load_pipeline_config(
    path: str | Path, profile: str | None = None, seed: int | None = None, extra: dict[str, Any] | None = None
) -> PipelineConfig:
    """Read and validate a pipeline file, apply ``profile`` (a key of ``Profiles``), ``extra`` and ``seed``."""
    data, lines = read_yaml(path)
    unknown = sorted(set(data) - {"Pipeline", "Profiles"})
    if unknown:
        line = lines.get((unknown[0],))
        raise UserError(f"{path}{f':{line}' if line else ''}: {unknown[0]}: unknown section (expected Pipeline, Profiles)")
    if not isinstance(data.get("Pipeline"), dict):
        raise UserError(f"{path}: Pipeline: required section is missing")
    section = data["Pipeline"]
    prefixed = {(("Pipeline", *k[1:]) if k[:1] == ("Pipeline",) else k): v for k, v in lines.items()}
    _validate(section, str(path), {k[1:]: v for k, v in prefixed.items() if k[:1] == ("Pipeline",)})
    profiles = data.get("Profiles") or {}
    if profile is not None:
        if profile not in profiles:
            raise UserError(f"--profile {profile}: not defined in {path} (Profiles: {', '.join(profiles) or 'none'})")
        if not isinstance(profiles[profile], dict):
            raise UserError(f"{path}: Profiles.{profile}: must be a mapping of Pipeline keys")
        section = deep_merge(section, profiles[profile])
        _validate(section, f"{path}: Profiles.{profile}", {})
    if extra:
        section = deep_merge(section, extra)
    if seed is not None:
        section = {**section, "seed": seed}
    resolved = _validate(section, str(path), {})
    return PipelineConfig(
        source=str(path), base_dir=str(Path(path).resolve().parent), profile=profile, pipeline=resolved
    )
