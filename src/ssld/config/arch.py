"""The ``Arch`` section: one timm/PaddleClas model, or a DistillationModel of named sub-models."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import (
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from ssld.config.section import Section
from ssld.errors import UserError

# Keyword arguments PaddleClas's model constructors take, kept apart in ``ModelSpec.paddle_kwargs``; what each
# means for a given model (mapped to timm, or refused in one line) is ssld.models.paddle_kwargs's job.
PADDLE_MODEL_KEYS: frozenset[str] = frozenset({
    "dropout_prob", "class_expand", "use_last_conv", "stride_list", "lr_mult_list", "return_patterns",
    "return_stages", "scale", "pretrained_list", "freeze_params_list", "models", "infer_output_key",
    "infer_add_softmax", "Backbone", "BackboneStopLayer", "Neck", "Head", "is_rec", "qk_dim", "keys",
    "s_shapes", "t_shapes", "n_t", "stage_type", "use_fused_attn", "use_fused_linear", "layer_scale_init_value",
    "head_init_scale", "override_params",
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
    image_size: tuple[int, int] | None = Field(None, description="[height, width] a network of fixed input size "
                                               "(ViT, Swin...) is built for; set from Global.image_shape")

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
    is_rec: Any = None
    infer_add_softmax: bool | None = Field(None, description="ssld export appends a softmax (true) or writes "
                                           "logits (false); unset: logits unless --softmax")
    paddle_kwargs: dict[str, Any] = Field(default_factory=dict, description="PaddleClas model arguments as given")
    _image_size: tuple[int, int] | None = PrivateAttr(None)  # Global.image_shape's, set by SSLDConfig

    @field_validator("infer_output_key", "is_rec")
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
            if spec.image_size is None and self._image_size is not None:
                spec = spec.model_copy(update={"image_size": self._image_size})
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
            paddle_kwargs=self.paddle_kwargs, image_size=self._image_size,
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
