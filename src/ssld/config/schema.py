"""The config schema: PaddleClas-compatible YAML sections, validated by pydantic.

Section and key names follow PaddleClas (``Global``, ``Arch``, ``Loss``, ``Optimizer``, ``DataLoader``...), so a
PaddleClas file loads unchanged. Keys PaddleClas defines that mean nothing here are listed in ``IGNORED_KEYS``:
they are accepted with one notice. Any other unknown key is an error (a typo must not pass silently).

The large sections have a module each (``section``, ``global_section``, ``arch``, ``optimizer``, ``dataloader``);
this module holds the small ones and ``SSLDConfig``, and is where every section class is imported from.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ssld.config.arch import ArchConfig, ModelSpec
from ssld.config.dataloader import (
    DataLoaderConfig,
    DatasetConfig,
    DataSplitConfig,
    LoaderConfig,
    SamplerConfig,
)
from ssld.config.global_section import AMPConfig, GlobalConfig
from ssld.config.optimizer import (
    LR_SCHEDULES,
    LR_UNSUPPORTED,
    LRConfig,
    OptimizerConfig,
    RegularizerConfig,
)
from ssld.config.section import IGNORED_KEYS, Section

__all__ = [
    "IGNORED_KEYS", "LR_SCHEDULES", "LR_UNSUPPORTED", "AMPConfig", "ArchConfig", "DataLoaderConfig", "DataSplitConfig",
    "DatasetConfig", "FixResConfig", "GlobalConfig", "InferConfig", "LRConfig", "LoaderConfig", "LossConfig",
    "MetricConfig", "ModelSpec", "OptimizerConfig", "RegularizerConfig", "SSLDConfig", "SamplerConfig", "Section",
]


class LossConfig(Section):
    """``Loss.Train`` / ``Loss.Eval``: lists of ``{LossName: {weight: ..., ...}}`` (see ssld.losses)."""

    Train: list[dict[str, dict[str, Any] | None]] = Field(default_factory=lambda: [{"CELoss": {"weight": 1.0}}])
    Eval: list[dict[str, dict[str, Any] | None]] | None = None


class MetricConfig(Section):
    """Accepted as PaddleClas writes it; evaluation reports top-1/top-5, or the attribute metrics for
    multi-label data, whose ``ATTRMetric: {threshold: t}`` is read (ssld.engine.attr_metrics)."""

    Train: list[dict[str, Any]] | None = None
    Eval: list[dict[str, Any]] | None = None

    @field_validator("Eval")
    @classmethod
    def _attr_metric(cls, v: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, entry in enumerate(v or []):
            opts = entry.get("ATTRMetric", {}) if isinstance(entry, dict) else {}
            if not isinstance(opts, dict | None):
                raise ValueError(f"[{i}].ATTRMetric: expected {{threshold: 0.5}}, got {opts!r}")  # noqa: TRY004 (pydantic)
            extra = sorted(set(opts or {}) - {"threshold"})
            if extra:
                raise ValueError(f"[{i}].ATTRMetric: unknown argument {extra[0]!r} (accepted: threshold)")
            t = (opts or {}).get("threshold", 0.5)
            if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < 1:
                raise ValueError(f"[{i}].ATTRMetric.threshold: must be a number between 0 and 1, got {t!r}")
        return v


class InferConfig(Section):
    ignored_group: ClassVar[str] = "Infer"
    model_config = ConfigDict(extra="allow")


class FixResConfig(Section):
    """FixRes finetune (Touvron et al. 2019; the reference's "Fix strategy"), run by ``ssld.engine.fixres`` on the
    engine's training loop: every weight but the classifier is frozen and training uses the eval preprocessing at
    ``test_size``."""

    enabled: bool = False
    train_size: int | None = Field(None, ge=1, description="resolution the model was trained at (default: eval crop)")
    test_size: int | None = Field(None, ge=1, description="finetune and test resolution (default: 1.15 x train_size)")
    bn_recalibrate: bool = Field(True, description="re-estimate BN running statistics at test_size before training")
    recalibrate_batches: int = Field(100, ge=1, description="training batches used to re-estimate BN statistics")
    epochs: int | None = Field(None, ge=1, description="finetune epochs (default: Global.epochs)")


class SSLDConfig(BaseModel):
    """A whole config file. ``Pipeline`` and ``Mining`` are ssld's own sections (free-form, read by those stages)."""

    model_config = ConfigDict(extra="forbid")
    Global: GlobalConfig = Field(default_factory=GlobalConfig)
    AMP: AMPConfig | None = None
    Arch: ArchConfig
    Loss: LossConfig = Field(default_factory=LossConfig)
    Optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    DataLoader: DataLoaderConfig = Field(default_factory=DataLoaderConfig)
    Metric: MetricConfig | None = None
    Infer: InferConfig | None = None
    Pipeline: dict[str, Any] | None = None
    Mining: dict[str, Any] | None = None
    EMA: dict[str, Any] | None = None
    FixRes: FixResConfig | None = None

    @model_validator(mode="after")
    def _arch_sync_bn(self) -> SSLDConfig:
        """PaddleClas writes ``use_sync_bn`` in ``Arch``; it means ``Global.use_sync_bn``. The networks are built
        for ``Global.image_shape`` (those of fixed input size need it)."""
        if self.Arch.use_sync_bn:
            self.Global.use_sync_bn = True
        self.Arch._image_size = (int(self.Global.image_shape[1]), int(self.Global.image_shape[2]))
        return self

    @model_validator(mode="before")
    @classmethod
    def _global_class_num(cls, data: Any) -> Any:
        """PaddleClas distillation files may put ``class_num`` in ``Global``: it means ``Arch.class_num``."""
        if isinstance(data, dict) and isinstance(data.get("Global"), dict) and "class_num" in data["Global"]:
            glob = dict(data["Global"])
            class_num = glob.pop("class_num")
            arch = data.get("Arch")
            if isinstance(arch, dict) and "class_num" not in arch:
                arch = {**arch, "class_num": class_num}
            data = {**data, "Global": glob, "Arch": arch}
        return data
