"""The config schema: PaddleClas-compatible YAML sections, validated by pydantic.

Section and key names follow PaddleClas (``Global``, ``Arch``, ``Loss``, ``Optimizer``, ``DataLoader``...), so a
PaddleClas file loads unchanged. Keys PaddleClas defines that mean nothing here are listed in ``IGNORED_KEYS``:
they are accepted with one notice. Any other unknown key is an error (a typo must not pass silently).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

# PaddleClas keys that are accepted and ignored (one notice each), by section.
IGNORED_KEYS: dict[str, set[str]] = {
    "Global": {
        "use_visualdl", "print_batch_step", "to_static", "use_dali", "save_inference_dir_", "video_dataset",
        "use_multilabel", "eval_mode", "retrieval_feature_from", "re_ranking", "use_sync_bn_", "update_freq",
    },
    "AMP": {"use_fp16_test", "use_promote"},
    "Arch": {"data_format"},
    "Optimizer": {"multi_precision", "use_nesterov_", "clip_norm_"},
    "loader": {"use_shared_memory"},
    "sampler": {"name"},
    "dataset": {"delimiter", "relabel", "backend"},
    "Infer": {"PostProcess", "batch_size", "infer_imgs", "transforms"},
}


class Section(BaseModel):
    """Base of every section: unknown keys are errors, except the PaddleClas ones listed in IGNORED_KEYS."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    ignored_group: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored(cls, data: Any) -> Any:
        group = cls.ignored_group
        if isinstance(data, dict) and group:
            ignored = IGNORED_KEYS.get(group, set())
            dropped = sorted(k for k in data if k in ignored)
            if dropped:
                from ssld.config.notices import notice_ignored

                notice_ignored(group, dropped)
                data = {k: v for k, v in data.items() if k not in ignored}
        return data


def _coerce_number(v: Any) -> Any:
    """PaddleClas writes numbers such as ``1.0/255.0`` or ``1e-5`` as strings: evaluate simple arithmetic."""
    if isinstance(v, str):
        s = v.strip()
        if s and all(c in "0123456789.eE+-*/() " for c in s):
            try:
                return float(eval(s, {"__builtins__": {}}, {}))
            except (SyntaxError, ArithmeticError, TypeError, ValueError):  # not arithmetic after all
                return v
    return v


class GlobalConfig(Section):
    """Run-wide settings (PaddleClas ``Global``)."""

    ignored_group: ClassVar[str] = "Global"
    checkpoints: str | None = Field(None, description="checkpoint to resume from (exact step)")
    pretrained_model: str | None = Field(None, description="weights to start from (model only, new schedule)")
    output_dir: str = "./output"
    device: Literal["auto", "cpu", "gpu", "cuda"] = "auto"
    save_interval: int = Field(1, ge=1)
    save_steps: int | None = Field(None, ge=1, description="also write checkpoints/latest.pt every N iterations")
    eval_during_train: bool = True
    eval_interval: int = Field(1, ge=1)
    start_eval_epoch: int = 0
    epochs: int = Field(1, ge=1)
    image_shape: list[int] = Field(default_factory=lambda: [3, 224, 224])
    save_inference_dir: str | None = None
    seed: int = 42
    deterministic: bool = False
    # faster on both CPUs tried (docs/benchmarks.md) and the usual choice on GPUs. torch 2.14.1 on the CPU aborts
    # channels_last training of the quarter-width ResNet-8 (heap corruption, SIGSEGV or SIGFPE) on odd batch
    # sizes (3, 5, 7, ..., 127; even ones and eval are fine), so CPU training then drops an epoch's last batch
    # when it is odd (build_loader's even_batches)
    channels_last: bool = True
    compile: bool = False
    use_sync_bn: bool = False
    accum_steps: int = Field(1, ge=1, description="gradient accumulation steps per optimizer step")
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap on iterations per epoch (quick runs)")
    ema: bool = False
    ema_decay: float = 0.9998
    log_interval: int = Field(20, ge=1)

    @field_validator("image_shape")
    @classmethod
    def _shape(cls, v: list[int]) -> list[int]:
        if len(v) != 3 or any(int(x) <= 0 for x in v):
            raise ValueError("must be [channels, height, width] with positive values")
        return v


class AMPConfig(Section):
    """Mixed precision. Present and ``enabled`` means autocast; PaddleClas loss-scaling keys map onto GradScaler."""

    ignored_group: ClassVar[str] = "AMP"
    enabled: bool = Field(True, validation_alias=AliasChoices("enabled", "use_amp"))
    dtype: Literal["bfloat16", "float16"] | None = Field(None, description="default: bfloat16 (fp16 on old GPUs)")
    scale_loss: float = 65536.0
    use_dynamic_loss_scaling: bool = True
    level: Literal["O1", "O2"] = "O1"

    _num = field_validator("scale_loss", mode="before")(lambda cls, v: _coerce_number(v))


class ModelSpec(Section):
    """One network: a timm name or a PaddleClas alias, plus how to initialise it."""

    name: str
    class_num: int | None = Field(None, ge=1)
    pretrained: bool | str = False
    use_ssld: bool = False
    drop_rate: float | None = None
    drop_path_rate: float | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for timm")


class ArchConfig(Section):
    """The model: a single network (``name: resnet20``) or ``name: DistillationModel`` with ``models``."""

    ignored_group: ClassVar[str] = "Arch"
    name: str
    class_num: int = Field(1000, ge=1)
    pretrained: bool | str = False
    use_ssld: bool = False
    drop_rate: float | None = None
    drop_path_rate: float | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    models: list[dict[str, ModelSpec]] | None = None
    freeze_params_list: list[bool] | None = None
    pretrained_list: list[str | None] | None = None
    infer_model_name: str | None = None
    teacher_bn_mode: Literal["train", "eval"] = "train"
    lr_mult_list: list[float] | None = None

    @property
    def is_distillation(self) -> bool:
        return self.name == "DistillationModel"

    @model_validator(mode="after")
    def _check_distillation(self) -> ArchConfig:
        if not self.is_distillation:
            if self.models:
                raise ValueError("'models' is only used with name: DistillationModel")
            return self
        if not self.models:
            raise ValueError("DistillationModel needs 'models': a list like [{Teacher: {name: ...}}, {Student: ...}]")
        names = []
        for i, entry in enumerate(self.models):
            if len(entry) != 1:
                raise ValueError(f"models[{i}] must have exactly one key (the model's name), got {list(entry)}")
            names.append(next(iter(entry)))
        if len(set(names)) != len(names):
            raise ValueError(f"models: duplicate model names {names}")
        for key in ("freeze_params_list", "pretrained_list"):
            val = getattr(self, key)
            if val is not None and len(val) != len(self.models):
                raise ValueError(f"{key} has {len(val)} entries but models has {len(self.models)}")
        if self.infer_model_name is None:
            self.infer_model_name = names[-1]
        elif self.infer_model_name not in names:
            raise ValueError(f"infer_model_name '{self.infer_model_name}' is not one of models {names}")
        return self

    def model_names(self) -> list[str]:
        """Names of the sub-models of a DistillationModel, in order (empty for a single model)."""
        return [next(iter(m)) for m in self.models or []]

    def model_specs(self) -> dict[str, ModelSpec]:
        """Sub-model specs by name, with Arch-level ``class_num`` filled in."""
        out: dict[str, ModelSpec] = {}
        for entry in self.models or []:
            (name, spec), = entry.items()
            if spec.class_num is None:
                spec = spec.model_copy(update={"class_num": self.class_num})
            out[name] = spec
        return out

    def frozen_names(self) -> list[str]:
        """Sub-models whose parameters are frozen (the teachers)."""
        if not self.freeze_params_list:
            return []
        return [n for n, f in zip(self.model_names(), self.freeze_params_list, strict=True) if f]


class LRConfig(Section):
    """Learning-rate schedule (PaddleClas ``Optimizer.lr``), stepped per iteration."""

    name: Literal["Cosine", "CosineWarmup", "Constant", "Step", "Piecewise"] = "Cosine"
    learning_rate: float = Field(0.1, gt=0)
    warmup_epoch: float = Field(0, ge=0)
    warmup_start_lr: float = Field(0.0, ge=0)
    eta_min: float = Field(0.0, ge=0)
    step_size: int | None = None
    gamma: float = 0.1
    decay_epochs: list[int] | None = None
    values: list[float] | None = None

    _num = field_validator("learning_rate", "warmup_start_lr", "eta_min", mode="before")(
        lambda cls, v: _coerce_number(v)
    )


class RegularizerConfig(Section):
    """``regularizer: {name: L2, coeff: 1e-5}``: becomes weight decay."""

    name: Literal["L2", "L1"] = "L2"
    coeff: float = Field(0.0, ge=0)

    _num = field_validator("coeff", mode="before")(lambda cls, v: _coerce_number(v))


class OptimizerConfig(Section):
    """Optimizer (PaddleClas ``Optimizer``): Momentum/SGD or AdamW/Adam, with L2 and per-stage lr multipliers."""

    ignored_group: ClassVar[str] = "Optimizer"
    name: Literal["Momentum", "SGD", "AdamW", "Adam", "RMSProp"] = "Momentum"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float | None = None
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    lr: LRConfig = Field(default_factory=LRConfig)
    regularizer: RegularizerConfig | None = None
    no_weight_decay_name: str | None = None
    one_dim_param_no_weight_decay: bool = False
    lr_mult_list: list[float] | None = None
    clip_grad_norm: float | None = None

    _num = field_validator("weight_decay", mode="before")(lambda cls, v: _coerce_number(v))

    @property
    def decay(self) -> float:
        """Effective weight decay: ``regularizer.coeff`` (PaddleClas L2) or ``weight_decay``."""
        if self.weight_decay is not None:
            return self.weight_decay
        return self.regularizer.coeff if self.regularizer else 0.0


class DatasetConfig(Section):
    """A dataset: list file (``ImageNetDataset``/``ListDataset``: ``path label`` lines) or ``ImageFolder``."""

    ignored_group: ClassVar[str] = "dataset"
    name: Literal["ImageNetDataset", "ListDataset", "ImageFolder", "CommonDataset"] = "ImageNetDataset"
    image_root: str = "."
    cls_label_path: str | None = None
    transform_ops: list[dict[str, Any] | str] = Field(default_factory=list)
    soft_labels: str | None = Field(None, description="soft-label store: offline teacher targets")
    cache_images: bool = Field(False, description="decode every image once into memory (small datasets only)")
    batch_transform_ops: list[dict[str, Any] | str] | None = Field(None, description="Mixup/CutMix operators")


class SamplerConfig(Section):
    """Batching (PaddleClas ``sampler``). ``batch_size`` is per process."""

    ignored_group: ClassVar[str] = "sampler"
    batch_size: int = Field(64, ge=1)
    drop_last: bool = False
    shuffle: bool = True


class LoaderConfig(Section):
    """DataLoader worker settings."""

    ignored_group: ClassVar[str] = "loader"
    num_workers: int = Field(2, ge=0)
    persistent_workers: bool = True
    pin_memory: bool | None = None
    prefetch_factor: int | None = None


class DataSplitConfig(Section):
    dataset: DatasetConfig
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    loader: LoaderConfig = Field(default_factory=LoaderConfig)


class DataLoaderConfig(Section):
    Train: DataSplitConfig | None = None
    Eval: DataSplitConfig | None = None


class LossConfig(Section):
    """``Loss.Train`` / ``Loss.Eval``: lists of ``{LossName: {weight: ..., ...}}`` (see ssld.losses)."""

    Train: list[dict[str, dict[str, Any] | None]] = Field(default_factory=lambda: [{"CELoss": {"weight": 1.0}}])
    Eval: list[dict[str, dict[str, Any] | None]] | None = None


class MetricConfig(Section):
    Train: list[dict[str, Any]] | None = None
    Eval: list[dict[str, Any]] | None = None


class InferConfig(Section):
    ignored_group: ClassVar[str] = "Infer"
    model_config = ConfigDict(extra="allow")


class FixResConfig(Section):
    """FixRes finetune (Touvron et al. 2019; the reference's "Fix strategy"), run by ``ssld.fixres``: every weight
    but the classifier is frozen and training uses the eval preprocessing at ``test_size``."""

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
