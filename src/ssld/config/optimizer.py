"""The ``Optimizer`` section: optimizer, regulariser and learning-rate schedule (PaddleClas names)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    AliasChoices,
    Field,
    field_validator,
)

from ssld.config.section import Section, _coerce_number

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
    step_size: float | None = Field(None, gt=0, description="Step: epochs between decays (fractions allowed)")
    gamma: float = 0.1
    decay_epochs: list[int] | None = None
    values: list[float] | None = None
    milestones: list[int] | None = Field(None, description="MultiStepDecay: epochs after which lr *= gamma")
    end_lr: float = Field(0.0, ge=0, description="Linear: the lr reached at the end")
    power: float = Field(1.0, gt=0, description="Linear: polynomial power of the decay")
    cycle: bool = False
    by_epoch: bool = Field(False, description="hold the lr for a whole epoch (PaddleClas steps it once per epoch)")

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

    @field_validator("cycle")
    @classmethod
    def _no_cycle(cls, v: bool) -> bool:
        if v:
            raise ValueError("not supported (a cycling Linear schedule), got True")
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
    nesterov: bool = Field(False, validation_alias=AliasChoices("nesterov", "use_nesterov"))
    weight_decay: float | None = Field(None, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    epsilon: float | None = Field(None, ge=0, description="Adam(W): 1e-8, RMSProp: 1e-6 (Paddle's defaults)")
    lr: LRConfig = Field(default_factory=LRConfig)
    regularizer: RegularizerConfig | None = None
    no_weight_decay_name: str | None = None
    one_dim_param_no_weight_decay: bool = False
    lr_mult_list: list[float] | None = None
    clip_grad_norm: float | None = Field(None, gt=0, description="clip the global gradient norm")
    clip_norm: float | None = Field(None, gt=0, description="clip each gradient tensor's norm (Paddle's "
                                                            "ClipGradByNorm, what PaddleClas's clip_norm does)")
    rho: float = Field(0.95, gt=0, lt=1, description="RMSProp: decay of the squared-gradient average")

    _num = field_validator("weight_decay", "epsilon", "rho", "clip_norm", "clip_grad_norm", mode="before")(
        lambda cls, v: _coerce_number(v))

    @property
    def decay(self) -> float:
        """Effective weight decay: ``regularizer.coeff`` (PaddleClas L2) or ``weight_decay``."""
        if self.weight_decay is not None:
            return self.weight_decay
        return self.regularizer.coeff if self.regularizer else 0.0
