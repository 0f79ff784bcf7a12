"""The ``Global`` and ``AMP`` sections: the run (epochs, output, device, seed, resume) and its precision."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    AliasChoices,
    Field,
    field_validator,
)

from ssld.config.section import Section, _coerce_number


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

    # PaddleClas's other training loops (EfficientNetV2's progressive resizing): refused naming the value
    train_mode: str | None = None

    @field_validator("train_mode")
    @classmethod
    def _train_mode(cls, v: str | None) -> str | None:
        if v is not None:
            raise ValueError(f"not supported (PaddleClas's {v!r} training loop; ssld has one loop, fixed-size "
                             f"images per stage), got {v!r}")
        return v

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
