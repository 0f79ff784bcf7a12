"""Pad, random crop and random flip on HWC uint8 numpy arrays, for small images.

torchvision's v2 ops cost 25-50 us per call in dispatch alone, which on a 28 px image is ten times the pixel
work; a Fashion-MNIST or CIFAR sample spends most of its loading time there. These do the same operations with
plain numpy slicing (a few us each) and draw their randomness from ``np.random``, which the dataset seeds per
sample like the torch RNG (``ssld.data.dataset``), so augmentation stays reproducible and resumable.
``build_transform`` uses them when every image op of a pipeline is one of these (the CIFAR-style recipe);
any other op keeps the whole pipeline on torchvision and PIL.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

_NP_PAD_MODE = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


def as_array(img: Image.Image | np.ndarray) -> np.ndarray:
    """An HWC uint8 array (a PIL image is converted; an array, or an NHWC batch, passes through)."""
    if isinstance(img, np.ndarray):
        return img if img.ndim >= 3 else img[:, :, None]
    arr = np.asarray(img)
    return arr if arr.ndim == 3 else arr[:, :, None]


def _ltrb(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    """torchvision's padding forms: ``p``, ``[lr, tb]`` or ``[l, t, r, b]``."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    p = [int(v) for v in padding]
    if len(p) == 1:
        return p[0], p[0], p[0], p[0]
    if len(p) == 2:
        return p[0], p[1], p[0], p[1]
    if len(p) == 4:
        return p[0], p[1], p[2], p[3]
    raise ValueError(f"padding must be an int or a list of 1, 2 or 4 ints, got {padding}")


class ArrayPad:
    """Pad an HWC array (or an NHWC batch) like ``v2.Pad`` (``fill`` is one value or one per channel for
    ``constant``)."""

    def __init__(self, padding: int | Sequence[int], fill: int | Sequence[int] = 0,
                 padding_mode: str = "constant") -> None:
        if padding_mode not in _NP_PAD_MODE:
            raise ValueError(f"padding_mode must be one of {sorted(_NP_PAD_MODE)}, got '{padding_mode}'")
        self.left, self.top, self.right, self.bottom = _ltrb(padding)
        self.fill = fill
        self.mode = padding_mode

    def __call__(self, img: Image.Image | np.ndarray) -> np.ndarray:
        arr = as_array(img)
        *lead, h, w, c = arr.shape
        if self.mode != "constant":
            pad = [(0, 0)] * len(lead) + [(self.top, self.bottom), (self.left, self.right), (0, 0)]
            return np.pad(arr, pad, mode=self.mode)
        out = np.empty((*lead, h + self.top + self.bottom, w + self.left + self.right, c), dtype=arr.dtype)
        out[...] = np.asarray(self.fill, dtype=arr.dtype)
        out[..., self.top:self.top + h, self.left:self.left + w, :] = arr
        return out

    def __repr__(self) -> str:
        return f"ArrayPad(ltrb={(self.left, self.top, self.right, self.bottom)}, fill={self.fill}, mode={self.mode})"


class ArrayRandomCrop:
    """A uniformly placed ``size`` crop, after optional padding, like ``v2.RandomCrop``."""

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] | None = None,
                 pad_if_needed: bool = False, fill: int | Sequence[int] = 0, padding_mode: str = "constant") -> None:
        self.h, self.w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.pad = ArrayPad(padding, fill, padding_mode) if padding else None
        self.pad_if_needed, self.fill, self.padding_mode = pad_if_needed, fill, padding_mode

    def __call__(self, img: Image.Image | np.ndarray) -> np.ndarray:
        arr = as_array(img) if self.pad is None else self.pad(img)
        h, w = arr.shape[:2]
        if self.pad_if_needed and (h < self.h or w < self.w):
            dw, dh = max(self.w - w, 0), max(self.h - h, 0)
            arr = ArrayPad([dw, dh], self.fill, self.padding_mode)(arr)
            h, w = arr.shape[:2]
        if h < self.h or w < self.w:
            raise ValueError(f"crop size {(self.h, self.w)} is larger than the (padded) image {(h, w)}")
        top = int(np.random.randint(0, h - self.h + 1))
        left = int(np.random.randint(0, w - self.w + 1))
        return arr[top:top + self.h, left:left + self.w]

    def __repr__(self) -> str:
        return f"ArrayRandomCrop(size={(self.h, self.w)}, pad={self.pad})"


class ArrayRandomFlip:
    """Flip with probability ``p``: ``horizontal``, ``vertical`` or ``both`` axes at once (cv2 code -1)."""

    def __init__(self, axes: str = "horizontal", p: float = 0.5) -> None:
        self.axes, self.p = {"horizontal": (1,), "vertical": (0,), "both": (0, 1)}[axes], p

    def __call__(self, img: Image.Image | np.ndarray) -> np.ndarray:
        arr = as_array(img)
        return np.flip(arr, self.axes) if np.random.random() < self.p else arr

    def __repr__(self) -> str:
        return f"ArrayRandomFlip(axes={self.axes}, p={self.p})"
