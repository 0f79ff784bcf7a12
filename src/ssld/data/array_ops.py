"""Pad, random crop and random flip on HWC uint8 numpy arrays, for small images.

torchvision's v2 ops cost 25-50 us per call in dispatch alone, which on a 28 px image is ten times the pixel
work; a Fashion-MNIST or CIFAR sample spends most of its loading time there. These do the same operations with
plain numpy slicing (a few us each) and draw their randomness from ``np.random``, which the dataset seeds per
sample like the torch RNG (``ssld.data.dataset``), so augmentation stays reproducible and resumable.
``build_transform`` uses them when every image op of a pipeline is one of these (the CIFAR-style recipe);
any other op keeps the whole pipeline on torchvision and PIL. ``scale_up`` and ``FitSize`` make images of any
size reach the network at its input size (a crop larger than the image scales the image up instead of failing).
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
    """torchvision's padding forms: ``p``, ``[lr, tb]`` or ``[l, t, r, b]`` (no negative values)."""
    p = [padding] if isinstance(padding, int) else [int(v) for v in padding]
    if len(p) not in (1, 2, 4) or any(v < 0 for v in p):
        raise ValueError(f"padding must be an int or a list of 1, 2 or 4 ints, none negative, got {padding}")
    if len(p) == 1:
        return p[0], p[0], p[0], p[0]
    if len(p) == 2:
        return p[0], p[1], p[0], p[1]
    return p[0], p[1], p[2], p[3]


def _resize(img: Image.Image | np.ndarray, h: int, w: int) -> Image.Image | np.ndarray:
    """``img`` resized to ``h x w`` (bilinear), of the same kind (PIL image, HWC array, or NHWC batch)."""
    if isinstance(img, Image.Image):
        return img.resize((w, h), Image.Resampling.BILINEAR)
    arr = as_array(img)
    if arr.ndim == 4:
        return np.stack([_resize(a, h, w) for a in arr])  # type: ignore[misc]
    one = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).resize((w, h), Image.Resampling.BILINEAR)
    return as_array(np.asarray(one))


def _hw_of(img: Image.Image | np.ndarray) -> tuple[int, int]:
    if isinstance(img, Image.Image):
        return img.height, img.width
    arr = as_array(img)
    return int(arr.shape[-3]), int(arr.shape[-2])


def scale_up(img: Image.Image | np.ndarray, h: int, w: int) -> Image.Image | np.ndarray:
    """``img`` (or an NHWC batch) with each side shorter than ``h x w`` stretched to it; unchanged when it already
    covers ``h x w``. A crop larger than a (tiny) image then still gives an ``h x w`` window of it. (Only the short
    sides grow, so a 1 px wide strip does not become a huge image.)"""
    ih, iw = _hw_of(img)
    if ih >= h and iw >= w:
        return img
    return _resize(img, max(h, ih), max(w, iw))


class FitSize:
    """Resize any image (PIL, HWC array or NHWC batch) that is not ``h x w`` to exactly that size; images of
    that size pass untouched. Ends pipelines that have no crop or resize of their own (e.g. 28 px images used as
    they are), so an image of another size still reaches the network at its input size."""

    def __init__(self, h: int, w: int) -> None:
        self.h, self.w = int(h), int(w)

    def __call__(self, img: Image.Image | np.ndarray) -> Image.Image | np.ndarray:
        return img if _hw_of(img) == (self.h, self.w) else _resize(img, self.h, self.w)

    def __repr__(self) -> str:
        return f"FitSize({self.h}, {self.w})"


class ScaleUp:
    """``scale_up`` as a pipeline step (before a PIL ``RandomCrop``)."""

    def __init__(self, h: int, w: int) -> None:
        self.h, self.w = int(h), int(w)

    def __call__(self, img: Image.Image | np.ndarray) -> Image.Image | np.ndarray:
        return scale_up(img, self.h, self.w)

    def __repr__(self) -> str:
        return f"ScaleUp({self.h}, {self.w})"


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
    """A uniformly placed ``size`` crop, after optional padding, like ``v2.RandomCrop``; an image still smaller
    than the crop (without ``pad_if_needed``) is scaled up to cover it first."""

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
        if h < self.h or w < self.w:  # an image smaller than the crop is scaled up to cover it
            arr = scale_up(arr, self.h, self.w)  # type: ignore[assignment]
            h, w = arr.shape[:2]
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
