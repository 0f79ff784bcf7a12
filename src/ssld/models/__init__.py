"""Models: timm classifiers by PaddleClas or timm name, small-image nets, DistillationModel, weight files."""

from ssld.models import cifar  # noqa: F401  (registers the small-image nets into timm)
from ssld.models.distillation import DistillationModel, num_classes_of
from ssld.models.factory import build_model, create_model
from ssld.models.names import resolve_model_name
from ssld.models.stages import classifier_param_names, lr_mult_groups
from ssld.models.weights import load_weights, read_state_dict, save_safetensors

__all__ = [
    "DistillationModel",
    "build_model",
    "classifier_param_names",
    "create_model",
    "load_weights",
    "lr_mult_groups",
    "num_classes_of",
    "read_state_dict",
    "resolve_model_name",
    "save_safetensors",
]
