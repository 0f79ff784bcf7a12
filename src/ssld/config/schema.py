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

from ssld.errors import UserError

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
    # PaddleClas's builder overwrites these two with the run's own values; so does ssld
    "lr": {"step_each_epoch", "epochs"},
}


class Section(BaseModel):
    """Base of every section: unknown keys are errors, except the PaddleClas ones listed in IGNORED_KEYS."""

    # inf and nan are never a sensible setting (an lr of .nan trains nothing); they fail validation
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)
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
    epochs: int = Field(1, ge=1, le=1_000_000)  # more is a typo, and would leave a schedule that never decays
    image_shape: list[int] = Field(default_factory=lambda: [3, 224, 224])
    save_inference_dir: str | None = None
    seed: int = Field(42, ge=0, le=2**32 - 1, description="numpy's seed range")
    deterministic: bool = False
    # NHWC memory format. "auto": on for CUDA, off on the CPU, where torch 2.14.1 aborts or hangs the backward pass
    # of some small networks in channels_last (seen on Intel Xeon and AMD EPYC, on odd and even batch sizes)
    channels_last: bool | Literal["auto"] = "auto"
    compile: bool = False
    use_sync_bn: bool = False
    accum_steps: int = Field(1, ge=1, description="gradient accumulation steps per optimizer step")
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap on iterations per epoch (quick runs)")
    ema: bool = False
    ema_decay: float = 0.9998
    log_interval: int = Field(20, ge=1)
    tensorboard: bool = Field(False, description="also write the logged metrics as TensorBoard scalars under "
                              "<output_dir>/tensorboard (needs the tensorboard package)")
    stall_timeout: float = Field(900, ge=0, description="seconds without a finished batch before training ends "
                                 "with one line (a hung worker, collective or kernel); 0: never")

    @field_validator("image_shape")
    @classmethod
    def _shape(cls, v: list[int]) -> list[int]:
        if len(v) != 3 or any(int(x) <= 0 for x in v):
            raise ValueError("must be [channels, height, width] with positive values")
        if max(v[1:]) > 8192:  # a typo: a batch of random images of that size (ssld check) would not fit in memory
            raise ValueError("height and width must be at most 8192 px")
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


# Keyword arguments PaddleClas's model constructors take, kept apart in ``ModelSpec.paddle_kwargs``; what each
# means for a given model (mapped to timm, or refused in one line) is ssld.models.paddle_kwargs's job.
PADDLE_MODEL_KEYS: frozenset[str] = frozenset({
    "dropout_prob", "class_expand", "use_last_conv", "stride_list", "lr_mult_list", "return_patterns",
    "return_stages", "scale", "pretrained_list", "freeze_params_list", "models", "infer_output_key",
    "infer_add_softmax", "Backbone", "BackboneStopLayer", "Neck", "Head", "is_rec", "qk_dim", "keys",
    "s_shapes", "t_shapes", "n_t", "stage_type",
})


class ModelSpec(Section):
    """One network: a timm name or a PaddleClas alias, plus how to initialise it."""

    name: str
    class_num: int | None = Field(None, ge=1)
    pretrained: bool | str = False
    use_ssld: bool = False
    drop_rate: float | None = None
    drop_path_rate: float | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for timm")
    paddle_kwargs: dict[str, Any] = Field(default_factory=dict, description="PaddleClas model arguments as given")

    @model_validator(mode="before")
    @classmethod
    def _paddle_keys(cls, data: Any) -> Any:
        """PaddleClas model arguments (``dropout_prob``, ``stride_list``...) move into ``paddle_kwargs``."""
        if isinstance(data, dict) and any(k in PADDLE_MODEL_KEYS for k in data):
            moved = {k: v for k, v in data.items() if k in PADDLE_MODEL_KEYS}
            rest = {k: v for k, v in data.items() if k not in PADDLE_MODEL_KEYS}
            data = {**rest, "paddle_kwargs": {**rest.get("paddle_kwargs", {}), **moved}}
        return data


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
    use_sync_bn: bool = Field(False, description="PaddleClas's place for Global.use_sync_bn (either turns it on)")
    # GeneralRecognition (metric-learning) keys: refused as not supported (naming the value), not as unknown keys
    infer_output_key: Any = None
    infer_add_softmax: Any = None
    is_rec: Any = None
    paddle_kwargs: dict[str, Any] = Field(default_factory=dict, description="PaddleClas model arguments as given")

    @field_validator("infer_output_key", "infer_add_softmax", "is_rec")
    @classmethod
    def _recognition(cls, v: Any) -> Any:
        if v is not None:
            raise ValueError("not supported (GeneralRecognition's metric-learning models are not implemented), "
                             f"got {v!r}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _paddle_keys(cls, data: Any) -> Any:
        """A single model's PaddleClas arguments (``dropout_prob``...) move into ``paddle_kwargs``."""
        own = set(cls.model_fields)
        if isinstance(data, dict) and any(k in PADDLE_MODEL_KEYS and k not in own for k in data):
            moved = {k: v for k, v in data.items() if k in PADDLE_MODEL_KEYS and k not in own}
            data = {**{k: v for k, v in data.items() if k not in moved}, "paddle_kwargs": moved}
        return data

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

    def single_spec(self) -> ModelSpec:
        """The ModelSpec of a single-model Arch (every field the model is built from)."""
        return ModelSpec(
            name=self.name, class_num=self.class_num, pretrained=self.pretrained, use_ssld=self.use_ssld,
            drop_rate=self.drop_rate, drop_path_rate=self.drop_path_rate, kwargs=self.kwargs,
            paddle_kwargs=self.paddle_kwargs,
        )

    def infer_spec(self, name: str | None = None) -> tuple[str, ModelSpec]:
        """``(name, spec)`` of the model that eval, export and predict run: ``name``, else ``infer_model_name``,
        else the single model; ``pretrained`` is cleared (weights come from a file given separately)."""
        if self.is_distillation:
            specs = self.model_specs()
            name = name or self.infer_model_name
            if name not in specs:
                raise UserError(f"--model: '{name}' is not a model in Arch.models {list(specs)}")
            return name, specs[name].model_copy(update={"pretrained": False})
        if name not in (None, self.name):
            raise UserError(f"--model: '{name}' is not in Arch (a single model '{self.name}')")
        return self.name, self.single_spec().model_copy(update={"pretrained": False, "use_ssld": False})

    def teacher_spec(self) -> tuple[str, ModelSpec, str | bool]:
        """``(name, spec, weights)`` of the teacher that labels and dedups: the single model, or the first frozen
        sub-model; ``spec.pretrained`` is cleared (the weights come back separately, ``True`` for timm's)."""
        if not self.is_distillation:
            spec = self.single_spec().model_copy(update={"pretrained": False, "use_ssld": False})
            return self.name, spec, self.pretrained
        frozen = self.frozen_names()
        if not frozen:
            raise UserError("Arch.freeze_params_list: this DistillationModel has no frozen (teacher) model to run")
        name = frozen[0]
        spec = self.model_specs()[name]
        pretrained: str | bool = spec.pretrained
        if self.pretrained_list:
            pretrained = self.pretrained_list[self.model_names().index(name)] or pretrained
        return name, spec.model_copy(update={"pretrained": False}), pretrained


LR_SCHEDULES = ("Cosine", "CosineWarmup", "Constant", "ConstLR", "Linear", "Step", "Piecewise", "MultiStepDecay")
# PaddleClas schedules ssld does not implement: refused as "not supported", not as unknown names
LR_UNSUPPORTED = ("Cyclic", "ReduceOnPlateau", "CosineFixmatch", "OneCycleLR")


class LRConfig(Section):
    """Learning-rate schedule (PaddleClas ``Optimizer.lr``), stepped per iteration (see ssld.engine.scheduler)."""

    ignored_group: ClassVar[str] = "lr"
    name: str = "Cosine"
    learning_rate: float = Field(0.1, gt=0)
    warmup_epoch: float = Field(0, ge=0)
    warmup_start_lr: float = Field(0.0, ge=0)
    eta_min: float = Field(0.0, ge=0)
    step_size: int | None = None
    gamma: float = 0.1
    decay_epochs: list[int] | None = None
    values: list[float] | None = None
    milestones: list[int] | None = Field(None, description="MultiStepDecay: epochs after which lr *= gamma")
    end_lr: float = Field(0.0, ge=0, description="Linear: the lr reached at the end")
    power: float = Field(1.0, gt=0, description="Linear: polynomial power of the decay")
    cycle: bool = False
    by_epoch: bool = False

    _num = field_validator("learning_rate", "warmup_start_lr", "eta_min", "end_lr", mode="before")(
        lambda cls, v: _coerce_number(v)
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v in LR_UNSUPPORTED:
            raise ValueError(f"a PaddleClas schedule ssld does not support (supported: {', '.join(LR_SCHEDULES)}), "
                             f"got {v!r}")
        if v not in LR_SCHEDULES:
            raise ValueError(f"unknown schedule (supported: {', '.join(LR_SCHEDULES)}), got {v!r}")
        return v

    @field_validator("cycle", "by_epoch")
    @classmethod
    def _no_cycle(cls, v: bool, info: Any) -> bool:
        if v:
            raise ValueError("not supported (ssld steps every schedule per iteration), got True")
        return v


class RegularizerConfig(Section):
    """``regularizer: {name: L2, coeff: 1e-5}``: becomes weight decay."""

    name: Literal["L2", "L1"] = "L2"
    coeff: float = Field(0.0, ge=0)

    _num = field_validator("coeff", mode="before")(lambda cls, v: _coerce_number(v))


class OptimizerConfig(Section):
    """Optimizer (PaddleClas ``Optimizer``): Momentum/SGD or AdamW/Adam, with L2 and per-stage lr multipliers."""

    ignored_group: ClassVar[str] = "Optimizer"
    name: Literal["Momentum", "SGD", "AdamW", "Adam", "RMSProp"] = "Momentum"
    momentum: float = Field(0.9, ge=0)
    nesterov: bool = False
    weight_decay: float | None = Field(None, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    epsilon: float = Field(1e-8, ge=0)
    lr: LRConfig = Field(default_factory=LRConfig)
    regularizer: RegularizerConfig | None = None
    no_weight_decay_name: str | None = None
    one_dim_param_no_weight_decay: bool = False
    lr_mult_list: list[float] | None = None
    clip_grad_norm: float | None = Field(None, gt=0)

    _num = field_validator("weight_decay", mode="before")(lambda cls, v: _coerce_number(v))

    @property
    def decay(self) -> float:
        """Effective weight decay: ``regularizer.coeff`` (PaddleClas L2) or ``weight_decay``."""
        if self.weight_decay is not None:
            return self.weight_decay
        return self.regularizer.coeff if self.regularizer else 0.0


# PaddleClas datasets ssld does not read, and why: refused as "not supported", not as unknown names
DATASETS_UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys(("Market1501", "MSMT17", "DukeMTMC", "VeriWild", "CompCars", "LogoDataset", "ICartoonDataset",
                     "FiveValidationDataset", "AdaFaceDataset"), "retrieval/recognition datasets are not implemented"),
    **dict.fromkeys(("MixDataset", "MultiScaleDataset", "CustomLabelDataset"), "not implemented"),
}


class DatasetConfig(Section):
    """A dataset: list file (``ImageNetDataset``/``ListDataset``: ``path label`` lines), ``ImageFolder``, or
    ``MultiLabelDataset`` (``path<TAB>0,1,0...`` lines, ssld.data.multilabel)."""

    ignored_group: ClassVar[str] = "dataset"
    name: Literal["ImageNetDataset", "ListDataset", "ImageFolder", "CommonDataset", "MultiLabelDataset"] = \
        "ImageNetDataset"

    @field_validator("name", mode="before")
    @classmethod
    def _paddle_dataset(cls, v: Any) -> Any:
        if v in DATASETS_UNSUPPORTED:
            raise ValueError(f"a PaddleClas dataset ssld does not support ({DATASETS_UNSUPPORTED[v]}), got {v!r}")
        return v

    image_root: str = "."
    cls_label_path: str | None = None
    label_ratio: bool = Field(False, description="MultiLabelDataset: labels carry each class's positive ratio "
                              "(the weight_ratio losses need it)")
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
        """PaddleClas writes ``use_sync_bn`` in ``Arch``; it means ``Global.use_sync_bn``."""
        if self.Arch.use_sync_bn:
            self.Global.use_sync_bn = True
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
