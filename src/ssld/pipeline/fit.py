"""Fit the training configs to the data: image size, channels and normalisation measured in the data stage.

The data stage measures a sample of the labeled images (``measure_images``: most common size, gray or colour,
per-channel mean and std of the 0-1 pixels) and records it in its ``done.json``. A training config may leave
those values to the data with ``auto`` (``Global.image_shape: auto``, ``RandomCrop: {size: auto}``,
``ResizeImage: {size: auto}``, ``CropImage: {size: auto}``, ``NormalizeImage: {mean: auto, std: auto}``;
``ssld init`` writes such configs); a value the config sets is used as it is, and when it does not match the
images the stage logs one notice line (e.g. 32 px RGB images through configs written for 28 px Fashion-MNIST).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ssld.errors import UserError

log = logging.getLogger("ssld.pipeline")
AUTO = "auto"
SIZE_OPS = ("RandomCrop", "CropImage", "ResizeImage", "RandCropImage")
MEAN_TOLERANCE = 0.1  # normalisation mean further than this from the data's (0-1 pixels) is a mismatch
_told: set[str] = set()


def measure_images(list_path: Path, image_root: str | Path, max_images: int = 500) -> dict[str, Any]:
    """Size, channels and per-channel mean/std (0-1 pixels, RGB) of up to ``max_images`` evenly spaced images."""
    from PIL import Image

    from ssld.data import read_list

    samples = read_list(list_path, image_root)
    step = max(1, len(samples) // max_images)
    sizes: Counter[tuple[int, int]] = Counter()
    total, sq, pixels, colour = np.zeros(3), np.zeros(3), 0, False
    for s in samples[::step][:max_images]:
        try:
            with Image.open(s.path) as im:
                colour = colour or im.mode not in ("L", "LA", "I", "I;16", "1", "P") and _is_colour(im)
                a = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
        except OSError:
            continue  # unreadable images are the loader's business; they say nothing about the size
        sizes[(a.shape[0], a.shape[1])] += 1
        flat = a.reshape(-1, 3)
        total += flat.sum(0)
        sq += (flat ** 2).sum(0)
        pixels += flat.shape[0]
    if not pixels:
        raise UserError(f"{list_path}: none of the first images could be read to measure their size")
    (h, w), _ = sizes.most_common(1)[0]
    mean = total / pixels
    std = np.sqrt(np.maximum(sq / pixels - mean ** 2, 1e-12))
    if not colour:  # gray images: one value for the three identical channels
        mean, std = np.full(3, mean.mean()), np.full(3, std.mean())
    return {"height": int(h), "width": int(w), "channels": 3 if colour else 1,
            "mean": [round(float(v), 3) for v in mean], "std": [round(float(v), 3) for v in std],
            "sizes_vary": len(sizes) > 1, "measured_images": int(sum(sizes.values()))}


def _is_colour(im: Any) -> bool:
    a = np.asarray(im.convert("RGB"), dtype=np.int16)
    return bool(np.abs(a[..., 0] - a[..., 1]).max() > 2 or np.abs(a[..., 1] - a[..., 2]).max() > 2)


def _transform_lists(raw: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    out = []
    for split in ("Train", "Eval"):
        ops = (((raw.get("DataLoader") or {}).get(split) or {}).get("dataset") or {}).get("transform_ops")
        if isinstance(ops, list):
            out.append((split, ops))
    return out


def _uses_auto(raw: dict[str, Any]) -> bool:
    if (raw.get("Global") or {}).get("image_shape") == AUTO:
        return True
    return any(isinstance(op, dict) and isinstance(kw := next(iter(op.values()), None), dict) and AUTO in kw.values()
               for _, ops in _transform_lists(raw) for op in ops)


def fill_auto(raw: dict[str, Any], image: dict[str, Any] | None, where: str) -> dict[str, Any]:
    """Replace every ``auto`` size/normalisation value of a raw training config with the measured one."""
    if not _uses_auto(raw):
        return raw
    if not image:
        raise UserError(f"{where}: the config leaves sizes to the data ('auto') but the data stage recorded no "
                        "image measurement: rerun it (ssld pipeline ... --from data)")
    h, w = image["height"], image["width"]
    glob = raw.get("Global") or {}
    if glob.get("image_shape") == AUTO:
        glob["image_shape"] = [3, h, w]
    for _, ops in _transform_lists(raw):
        for op in ops:
            if not isinstance(op, dict):
                continue
            name, kw = next(iter(op.items()))
            if not isinstance(kw, dict):
                continue
            if name in SIZE_OPS and kw.get("size") == AUTO:
                kw["size"] = h if h == w else [w, h]  # PaddleClas sizes are [width, height]
            if name == "NormalizeImage":
                for key in ("mean", "std"):
                    if kw.get(key) == AUTO:
                        kw[key] = list(image[key])
    return raw


def mismatch(raw: dict[str, Any], image: dict[str, Any] | None) -> str | None:
    """What in a (filled) training config does not fit the measured images, in a few words; None if all fits."""
    if not image:
        return None
    h, w = image["height"], image["width"]
    found = []
    shape = (raw.get("Global") or {}).get("image_shape")
    if isinstance(shape, list) and len(shape) == 3 and list(shape[1:]) != [h, w]:
        found.append(f"Global.image_shape {shape}")
    for split, ops in _transform_lists(raw):
        for op in ops:
            if not isinstance(op, dict):
                continue
            name, kw = next(iter(op.items()))
            kw = kw if isinstance(kw, dict) else {}
            size = kw.get("size")
            if name in ("RandomCrop", "CropImage") and size is not None and size not in (h, [w, h]):
                found.append(f"{split} {name} size {size}")
            if name == "NormalizeImage" and isinstance(kw.get("mean"), list) and len(kw["mean"]) == 3:
                off = max(abs(float(a) - float(b)) for a, b in zip(kw["mean"], image["mean"], strict=True))
                if off > MEAN_TOLERANCE and f"mean {kw['mean']}" not in " ".join(found):
                    found.append(f"NormalizeImage mean {kw['mean']}")
    return ", ".join(found) or None


def describe(image: dict[str, Any]) -> str:
    """``32x32 RGB, mean [...]`` for messages."""
    kind = "RGB" if image["channels"] == 3 else "gray"
    return f"{image['height']}x{image['width']} {kind}, mean {image['mean']}, std {image['std']}"


def fit_config(raw: dict[str, Any], image: dict[str, Any] | None, where: str, source: str) -> dict[str, Any]:
    """``fill_auto`` then one notice line (once per stage and config) when the config does not fit the images."""
    raw = fill_auto(raw, image, where)
    what = mismatch(raw, image)
    if what and (key := f"{where}:{source}:{what}") not in _told:
        _told.add(key)
        log.warning("notice: %s (%s): the images are %s but the config has %s: set those values to the data's, "
                    "or to auto (ssld init writes such configs)", where, source, describe(image), what)
    return raw
