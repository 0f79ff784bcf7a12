"""PaddleClas ``transform_ops`` lists mapped onto torchvision.transforms.v2 and timm augmentations.

Each list item is ``{OpName: {kwargs}}`` or a bare ``OpName``. Ops keep their order; image ops (crops, flips,
AutoAugment...) run on the PIL image, ``NormalizeImage`` converts to a float CHW tensor, and tensor ops
(``RandomErasing``) run after it. Without ``NormalizeImage`` the result is still a float tensor in [0, 1].
Lists whose image ops are all CIFAR-style (``Pad``, ``RandomCrop``, ``RandFlipImage``) run them on numpy arrays
instead (``ssld.data.array_ops``: torchvision's per-call overhead dominates small images).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torchvision.transforms import v2

from ssld.data.image_ops import (
    ARRAY_OPS,
    INTERNAL_OPS,
    OPS,
    Built,
    ToNormalizedTensor,
    to_pil,
)
from ssld.errors import UserError

_SIZED = ("RandCropImage", "CropImage", "ResizeImage", "RandomCrop", "RandomCropImage")


Parsed = list[tuple[int, str, dict[str, Any]]]  # (index in transform_ops, op name, kwargs)


def _parse(ops: Sequence[dict[str, Any] | str]) -> Parsed:
    """Normalise the op list into ``(i, name, kwargs)``, rejecting unknown names."""
    parsed: Parsed = []
    for i, op in enumerate(ops):
        if isinstance(op, str):
            name, kwargs = op, {}
        elif isinstance(op, dict) and len(op) == 1:
            name, kwargs = next(iter(op.items()))
            kwargs = dict(kwargs or {})
        else:
            raise UserError(f"transform_ops[{i}]: expected '{{OpName: {{kwargs}}}}' or 'OpName', got {op!r}")
        if name not in OPS:
            close = difflib.get_close_matches(str(name), OPS, n=2, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else f"; known: {', '.join(OPS)}"
            raise UserError(f"transform_ops[{i}]: unknown op '{name}'{hint}")
        parsed.append((i, name, kwargs))
    return parsed


def _override_size(parsed: Parsed, image_size: int) -> None:
    """Set the last crop/resize to ``image_size``; an earlier resize scales with it (keeps the crop ratio)."""
    last = max((j for j, (_, n, _) in enumerate(parsed) if n in _SIZED), default=None)
    if last is None:  # no size op: resize just before the image becomes a tensor
        at = next((j for j, (_, n, _) in enumerate(parsed) if n in ("NormalizeImage", "RandomErasing")), len(parsed))
        parsed.insert(at, (at, "ResizeImage", {"size": image_size}))
        return
    _, name, kw = parsed[last]
    key = "resize_short" if name == "ResizeImage" and kw.get("resize_short") is not None else "size"
    old = kw.get(key)
    kw[key] = image_size
    if name == "CropImage" and old is not None:
        ratio = image_size / (old if isinstance(old, int) else min(old))
        for _, n, k in parsed[:last]:
            if n == "ResizeImage" and k.get("resize_short") is not None:
                k["resize_short"] = round(k["resize_short"] * ratio)


def _fixed_size(parsed: Parsed) -> bool:
    """Whether the pipeline's output size is fixed by a crop or a resize to an exact size."""
    return any(n in ("RandCropImage", "CropImage", "RandomCrop", "RandomCropImage") or (n == "ResizeImage" and k.get("size") is not None)
               for _, n, k in parsed)


def _array_only(parsed: Parsed) -> bool:
    """Every image op has a numpy version (``DecodeImage`` only with its default RGB order)."""
    for _, name, kwargs in parsed:
        if name == "DecodeImage" and kwargs.get("to_rgb", True) is False:
            return False
        if name not in ARRAY_OPS and name not in ("DecodeImage", "NormalizeImage", "RandomErasing"):
            return False
    return True


def _call(i: int, name: str, kwargs: dict[str, Any], ops: dict[str, Callable[..., Built]] = OPS) -> Built:
    builder = OPS.get(name) or INTERNAL_OPS[name]
    params = inspect.signature(builder).parameters
    for key in kwargs:
        if key not in params:
            close = difflib.get_close_matches(key, params, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else f"; accepted: {', '.join(params) or 'none'}"
            raise UserError(f"transform_ops[{i}].{name}: unknown argument '{key}'{hint}")
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in kwargs]
    if missing:
        raise UserError(f"transform_ops[{i}].{name}: missing required argument '{missing[0]}'")
    try:
        return ops.get(name, builder)(**kwargs)
    except (TypeError, ValueError, AssertionError, KeyError) as e:
        raise UserError(f"transform_ops[{i}].{name}: {e}") from None


def build_transform(ops: Sequence[dict[str, Any] | str], image_size: int | None = None,
                    fit_size: Sequence[int] | None = None) -> Callable[[Any], torch.Tensor]:
    """A Compose turning an RGB PIL image (or HWC uint8 array) into a float CHW tensor, following the PaddleClas
    op list. Pipelines whose image ops all have numpy versions (``ARRAY_OPS``) run on arrays, others on PIL.

    ``image_size`` replaces the final crop/resize size (evaluation at another resolution, e.g. FixRes).
    ``fit_size`` (the network's input ``(h, w)``, e.g. ``Global.image_shape[1:]``) ends a pipeline that has no
    crop or fixed-size resize with ``FitSize``: an image of another size is resized to it (same-size images pass
    untouched), so images of any size can share a batch.
    """
    parsed = _parse(ops)
    if image_size is not None:
        _override_size(parsed, int(image_size))
    elif fit_size is not None and not _fixed_size(parsed):
        h, w = (int(v) for v in fit_size)
        at = next((j for j, (_, n, _) in enumerate(parsed) if n in ("NormalizeImage", "RandomErasing")), len(parsed))
        parsed.insert(at, (at, "FitSize", {"h": h, "w": w}))
    arrays = _array_only(parsed)
    out: list[Callable[[Any], Any]] = [] if arrays else [to_pil]
    converted = False
    for i, name, kwargs in parsed:
        stage, transforms = _call(i, name, kwargs, ARRAY_OPS if arrays else OPS)
        if stage == "image" and converted and transforms:
            raise UserError(f"transform_ops[{i}]: {name} works on images and must come before NormalizeImage "
                            "and RandomErasing")
        if stage == "tensor" and not converted:
            out.append(ToNormalizedTensor())  # 0-1 floats, like the images the tensor ops expect
        converted = converted or stage in ("normalize", "tensor")
        out += transforms
    if not converted:
        out.append(ToNormalizedTensor())
    return v2.Compose(out)
