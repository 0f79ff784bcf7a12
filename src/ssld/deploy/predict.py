"""Classify image files with a PyTorch, ONNX or TorchScript model, using the eval preprocessing.

Preprocessing comes from the config's ``DataLoader.Eval`` ops, or from the ``preprocess.json`` that
``ssld export`` writes next to its files, or (no config, no sidecar) a plain resize + center crop + ImageNet
normalisation at ``--image-size``. An unreadable image is reported and skipped; the rest still run.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssld.data.lists import IMAGE_EXTENSIONS
from ssld.errors import UserError, first_line

Backend = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Prediction:
    """Top-k result for one image, or ``error`` when it could not be read."""

    path: str
    classes: list[int]
    probs: list[float]
    names: list[str] | None = None
    error: str | None = None


def collect_images(inputs: Iterable[str]) -> list[Path]:
    """Expand files and folders (recursively, image extensions only) into a sorted-per-folder file list."""
    files: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise UserError(f"{p}: folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise UserError(f"{p}: no such file or folder")
    return files


def read_labels(path: str | Path) -> list[str]:
    """Class names, one per line (``name`` or ``<id> <name>`` as PaddleClas label files write them)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--labels: {p}: file not found")
    names: list[str] = []
    for lineno, line in enumerate(p.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        if rest and head.isdigit():
            if int(head) != len(names):
                raise UserError(f"{p}:{lineno}: class id {head} out of order (expected {len(names)})")
            line = rest.strip()
        names.append(line)
    return names


def read_sidecar(model_file: str | Path) -> dict[str, Any] | None:
    """The ``preprocess.json`` written by ``ssld export`` next to ``model_file``, if present."""
    side = Path(model_file).with_name("preprocess.json")
    if not side.is_file():
        return None
    try:
        return json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{side}: cannot read export preprocessing: {e}") from None


def onnx_backend(path: str | Path, shape: tuple[int, int, int]) -> Backend:
    """An onnxruntime session as a batch function; its input shape must accept ``(N, *shape)``."""
    import onnxruntime as ort

    p = Path(path)
    if not p.is_file():
        raise UserError(f"--onnx: {p}: file not found")
    try:
        session = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own, unexported exception types
        raise UserError(f"--onnx: {p}: not a loadable ONNX model: {first_line(e)}") from None
    inp = session.get_inputs()[0]
    dims = list(inp.shape)
    fixed = [d if isinstance(d, int) else None for d in dims[1:]]
    if len(dims) != 4 or any(f is not None and f != s for f, s in zip(fixed, shape, strict=True)):
        want = "x".join("?" if f is None else str(f) for f in fixed) if len(dims) == 4 else str(dims)
        raise UserError(f"--onnx: {p}: model input '{inp.name}' expects N x {want} but the preprocessing gives "
                        f"N x {'x'.join(map(str, shape))} (check --image-size or preprocess.json)")

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {inp.name: x.numpy().astype(np.float32)})[0])

    return run


def torchscript_backend(path: str | Path) -> Backend:
    """A TorchScript file as a batch function."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--torchscript: {p}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(p), map_location="cpu").eval()
    except RuntimeError as e:
        raise UserError(f"--torchscript: {p}: not a loadable TorchScript file: {first_line(e)}") from None
    return lambda x: module(x)


def _load_image(path: Path, transform: Callable) -> torch.Tensor | str:
    """The preprocessed image, or why it cannot be read (missing, empty, truncated, not an image)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return transform(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        return str(e).splitlines()[0] if str(e) else type(e).__name__


@torch.inference_mode()
def predict(backend: Backend, transform: Callable, files: list[Path], topk: int = 5, outputs_probs: bool = False,
            names: list[str] | None = None, batch_size: int = 32) -> list[Prediction]:
    """Top-k classes per image, in input order; unreadable images get ``error`` set and do not stop the run."""
    results: dict[int, Prediction] = {}
    batch: list[tuple[int, torch.Tensor]] = []

    def flush() -> None:
        out = backend(torch.stack([t for _, t in batch])).float()
        probs = out if outputs_probs else torch.softmax(out, dim=1)
        if names is not None and len(names) != probs.shape[1]:
            raise UserError(f"--labels: {len(names)} names but the model has {probs.shape[1]} classes")
        top = probs.topk(min(topk, probs.shape[1]), dim=1)
        for (i, _), vals, idx in zip(batch, top.values.tolist(), top.indices.tolist(), strict=True):
            results[i] = Prediction(str(files[i]), idx, vals, [names[j] for j in idx] if names else None)
        batch.clear()

    for i, f in enumerate(files):
        image = _load_image(f, transform)
        if isinstance(image, str):
            results[i] = Prediction(str(f), [], [], error=f"cannot read image: {image}")
        else:
            batch.append((i, image))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return [results[i] for i in range(len(files))]


def predict_images(
    images: Iterable[str], *, cfg: Any = None, weights: str | None = None, onnx: str | None = None,
    torchscript: str | None = None, image_size: int | None = None, labels: str | None = None, topk: int = 5,
    batch_size: int = 32,
) -> list[Prediction]:
    """Top-k classes of every image file (folders searched recursively) from one model: PyTorch ``weights`` with
    ``cfg`` (an ``SSLDConfig``), or an ``onnx``/``torchscript`` file from ``ssld export``. Preprocessing: the
    config's eval ops, else the export's ``preprocess.json``, else resize + center crop at ``image_size``."""
    from ssld.data import build_transform
    from ssld.data.preprocessing import eval_ops, fixed_size_ops

    if topk < 1:
        raise UserError("--topk: must be at least 1")
    if image_size is not None and not 1 <= image_size <= 8192:
        raise UserError(f"--image-size: must be between 1 and 8192 pixels, got {image_size}")
    if sum(x is not None for x in (weights, onnx, torchscript)) != 1:
        raise UserError("predict: give exactly one model: --weights (with -c), --onnx or --torchscript")
    if weights and cfg is None:
        raise UserError("--weights: needs -c/--config (the model architecture)")
    files = collect_images(images)
    names = read_labels(labels) if labels else None
    exported = onnx or torchscript
    side = read_sidecar(exported) if exported else None
    size = image_size if image_size is not None else (side or {}).get("image_size")
    if cfg is None and side is not None:
        ops, fallback = side["transform_ops"], side["input_shape"]
    else:
        ops = eval_ops(cfg, size)
        fallback = cfg.Global.image_shape if cfg else [3, size, size]
    ops, shape = fixed_size_ops(ops, size, fallback)
    transform = build_transform(ops, image_size=size)
    if onnx:
        backend = onnx_backend(onnx, shape)
    elif torchscript:
        backend = torchscript_backend(torchscript)
    else:
        from ssld.models.infer import load_infer_model

        backend = load_infer_model(cfg.Arch, weights)
    return predict(backend, transform, files, topk=topk, outputs_probs=bool((side or {}).get("softmax", False)),
                   names=names, batch_size=batch_size)


def format_prediction(p: Prediction) -> str:
    """One line per image: ``path: 3 Dress 0.912, 0 T-shirt 0.040, ...`` or ``path: error: ...``."""
    if p.error:
        return f"{p.path}: error: {p.error}"
    parts = [f"{c}{' ' + n if p.names else ''} {v:.3f}" for c, n, v in zip(p.classes, p.names or p.classes, p.probs,
                                                                          strict=True)]
    return f"{p.path}: " + ", ".join(parts)
