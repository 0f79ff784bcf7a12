"""The one way to get a trained model back for inference: build the config's inference model, load a weights file."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ssld.config.schema import ArchConfig
from ssld.errors import UserError


def load_infer_model(arch: ArchConfig, weights: str | Path, name: str | None = None) -> nn.Module:
    """Build the named (default: inference) model of ``arch`` and load ``weights`` into it, in eval mode.

    A DistillationModel checkpoint contributes the named sub-model; weights that do not fit are one line
    (``load_weights`` names the file, the model and the first mismatches).
    """
    from ssld.models.factory import create_model
    from ssld.models.weights import load_weights

    name, spec = arch.infer_spec(name)
    if not Path(weights).is_file():
        raise UserError(f"--weights: {weights}: file not found")
    model = create_model(spec, spec.class_num or arch.class_num)
    load_weights(model, str(weights), strict=True, prefix=name if arch.is_distillation else None)
    return model.eval()
