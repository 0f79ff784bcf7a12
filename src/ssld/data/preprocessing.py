"""The eval preprocessing of a deployed model, as PaddleClas ``transform_ops`` that always give one input shape.

Shared by ``ssld export`` (which records it in ``preprocess.json``), ``ssld predict`` and FixRes.
"""

from __future__ import annotations

from typing import Any

from ssld.config.schema import SSLDConfig
from ssld.errors import UserError


def eval_ops(cfg: SSLDConfig | None, image_size: int | None) -> list[Any]:
    """Eval preprocessing as PaddleClas ops: the config's ``DataLoader.Eval`` ops, or a plain ImageNet-style
    resize + center crop + normalize when there is no config (``image_size`` required then)."""
    if cfg is not None and cfg.DataLoader.Eval is not None and cfg.DataLoader.Eval.dataset.transform_ops:
        return list(cfg.DataLoader.Eval.dataset.transform_ops)
    if image_size is None:
        raise UserError("--image-size: needed when the config has no DataLoader.Eval.dataset.transform_ops")
    return [
        {"ResizeImage": {"resize_short": round(image_size / 0.875)}},
        {"CropImage": {"size": image_size}},
        {"NormalizeImage": {"order": ""}},  # ImageNet mean and std
        "ToCHWImage",
    ]


def _probe(ops: list[Any], image_size: int | None) -> tuple[int, int, int] | None:
    """``(C, H, W)`` the preprocessing produces on two blank images of different sizes, or None when the output
    follows the input size (no resize or crop op)."""
    from PIL import Image

    from ssld.data import build_transform

    transform = build_transform(ops, image_size=image_size)
    shapes = {tuple(transform(Image.new("RGB", (s, s + 7), (128, 128, 128))).shape) for s in (61, 97)}
    return shapes.pop() if len(shapes) == 1 else None  # type: ignore[return-value]


def fixed_size_ops(ops: list[Any], image_size: int | None, fallback: list[int]) -> tuple[list[Any], tuple[int, ...]]:
    """Eval ops that always produce one input shape, and that shape ``(C, H, W)``.

    Ops without a resize or crop (e.g. 28 px Fashion-MNIST used as is) get a leading ``ResizeImage`` to
    ``image_size`` or ``fallback`` (``Global.image_shape``), so any image fits the exported model.
    """
    if _probe(ops, None) is None:
        h, w = (image_size, image_size) if image_size else (int(fallback[1]), int(fallback[2]))
        ops = [{"ResizeImage": {"size": [w, h]}}, *ops]
    shape = _probe(ops, image_size)
    assert shape is not None  # a fixed-size resize now leads the ops
    return ops, shape
