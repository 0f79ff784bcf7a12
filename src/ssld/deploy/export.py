"""Export the inference model to ONNX and TorchScript, and prove the files compute what PyTorch computes.

Each export has a dynamic batch axis and is checked against the PyTorch model on random batches of 2 and 5
(ONNX through onnxruntime, TorchScript after a save/reload); the largest absolute differences go to
``export_report.json``. A ``preprocess.json`` sidecar records the eval preprocessing and input shape so
``ssld predict --onnx`` needs nothing else. ``backbone=True`` also writes the model without its classifier
(pooled features), for use as a detection or retrieval backbone.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssld.config.schema import SSLDConfig
from ssld.data.preprocessing import eval_ops, fixed_size_ops
from ssld.errors import UserError
from ssld.models.infer import load_infer_model
from ssld.utils.io import atomic_path, write_json

FORMATS = ("onnx", "torchscript")
PARITY_BATCHES = (2, 5)
PARITY_ATOL = 1e-4


class WithSoftmax(nn.Module):
    """The model followed by a softmax over classes, so an exported file returns probabilities."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def backbone_of(model: nn.Module) -> nn.Module:
    """A copy of ``model`` without its classifier: ``forward`` returns pooled pre-logit features."""
    feat = copy.deepcopy(model)
    if not hasattr(feat, "reset_classifier"):
        raise UserError(f"--backbone: model {type(model).__name__} has no reset_classifier(); cannot strip the head")
    feat.reset_classifier(0)
    return feat.eval()


def export_onnx(model: nn.Module, path: Path, example: torch.Tensor, opset: int, output_name: str) -> None:
    """Write ``model`` as ONNX with a dynamic batch axis (the TorchScript-based exporter: a plain graph)."""
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(tmp), dynamo=False, opset_version=opset,
            input_names=["input"], output_names=[output_name],
            dynamic_axes={"input": {0: "batch"}, output_name: {0: "batch"}},
        )


def export_torchscript(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    """Write ``model`` traced to TorchScript (batch size is not baked in: CNN graphs trace shape-free)."""
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(tmp))


def _random_batches(shape: tuple[int, int, int], seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(b, *shape, generator=gen) for b in PARITY_BATCHES]


@torch.inference_mode()
def onnx_parity(model: nn.Module, path: Path, shape: tuple[int, int, int]) -> dict[str, float]:
    """Max abs difference between onnxruntime and PyTorch outputs, per parity batch size."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return {
        f"batch{x.shape[0]}": float((torch.from_numpy(session.run(None, {name: x.numpy()})[0]) - model(x)).abs().max())
        for x in _random_batches(shape)
    }


@torch.inference_mode()
def torchscript_parity(model: nn.Module, path: Path, shape: tuple[int, int, int]) -> dict[str, float]:
    """Max abs difference between the reloaded TorchScript file and PyTorch, per parity batch size."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path), map_location="cpu").eval()
    return {f"batch{x.shape[0]}": float((loaded(x) - model(x)).abs().max()) for x in _random_batches(shape)}


@dataclass
class ExportResult:
    """What ``export_model`` wrote and measured; ``ok`` is False when any parity diff exceeds ``PARITY_ATOL``."""

    files: dict[str, str] = field(default_factory=dict)
    parity: dict[str, dict[str, float]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(d <= PARITY_ATOL for diffs in self.parity.values() for d in diffs.values())


def _export_one(tag: str, model: nn.Module, out: Path, formats: list[str], shape: tuple[int, int, int],
                opset: int, output_name: str, result: ExportResult) -> None:
    example = torch.zeros(PARITY_BATCHES[0], *shape)
    if "onnx" in formats:
        path = out / f"{tag}.onnx"
        export_onnx(model, path, example, opset, output_name)
        result.files[f"{tag}.onnx"] = str(path)
        result.parity[f"{tag}.onnx"] = onnx_parity(model, path, shape)
    if "torchscript" in formats:
        path = out / f"{tag}.torchscript.pt"
        export_torchscript(model, path, example)
        result.files[f"{tag}.torchscript"] = str(path)
        result.parity[f"{tag}.torchscript"] = torchscript_parity(model, path, shape)


def export_model(cfg: SSLDConfig, weights: str | Path, out_dir: str | Path, formats: list[str],
                 softmax: bool = False, backbone: bool = False, image_size: int | None = None,
                 opset: int = 17, model_name: str | None = None) -> ExportResult:
    """Export the (inference) model, check parity, and write ``preprocess.json`` and ``export_report.json``."""
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UserError(f"--format: unknown format(s) {bad}; choose from {','.join(FORMATS)}")
    name, spec = cfg.Arch.infer_spec(model_name)
    model = load_infer_model(cfg.Arch, weights, name)
    ops, shape = fixed_size_ops(eval_ops(cfg, image_size), image_size, cfg.Global.image_shape)
    out = Path(out_dir)
    result = ExportResult()
    head = WithSoftmax(model).eval() if softmax else model
    _export_one("model", head, out, formats, shape, opset, "probs" if softmax else "logits", result)
    if backbone:
        feat = backbone_of(model)
        _export_one("backbone", feat, out, formats, shape, opset, "features", result)
        from ssld.models import save_safetensors

        path = out / "backbone.safetensors"
        save_safetensors(feat.state_dict(), path)
        result.files["backbone.safetensors"] = str(path)
    preprocess = {
        "transform_ops": ops, "image_size": image_size, "input_shape": list(shape), "input_name": "input",
        "softmax": softmax, "num_classes": spec.class_num or cfg.Arch.class_num, "model": name, "arch": spec.name,
    }
    write_json(out / "preprocess.json", preprocess)
    result.files["preprocess.json"] = str(out / "preprocess.json")
    result.report = {
        "model": name, "arch": spec.name, "weights": str(weights), "input_shape": list(shape),
        "dynamic_axes": {"input": 0}, "opset": opset if "onnx" in formats else None, "softmax": softmax,
        "parity_batches": list(PARITY_BATCHES), "parity_atol": PARITY_ATOL, "max_abs_diff": result.parity,
        "ok": result.ok, "files": result.files, "torch": torch.__version__,
    }
    write_json(out / "export_report.json", result.report)
    return result
