"""A weight-free global descriptor: a small blurred grayscale thumbnail, zero-mean and unit-norm (so the cosine of
two descriptors is their normalised cross-correlation at low resolution).

It needs no network, so it works the same whether the teacher is good or not. Brightness, contrast, JPEG, blur
and resizing barely move it; a crop or a small rotation moves it more, so every reference is indexed in several
views - as is, cropped to its centre, to each corner and to strips, slightly rotated, each also mirrored - and a
pool image, seen whole and by its centre, keeps its best pair of views per reference. The shortlist it gives is verified by
the aligned NCC and SIFT on large images; on small ones its best-vs-second-best margin may decide, like the hash
rule.
"""

from __future__ import annotations

import cv2
import numpy as np

SIDE = 12  # descriptor = SIDE x SIDE thumbnail
FLAT_STD = 3.0  # gray levels: a view this flat has no descriptor (zeros never match)
# reference views: (crop fraction of the width, of the height, anchor x, anchor y, rotation degrees); each is also
# mirrored. The centre 75 % rotated by +-5 and +-10 deg meet a rotated copy's own centre (POOL_VIEWS), which
# leaves out its black corners: the source of a rotated copy is then among its 5 nearest references for all
# rotated copies of the photo benchmark's seed 0 instead of 79 %. The strips (80 % of one side, all of the
# other) meet copies cropped more on one side than the other, which change their aspect (docs/mining.md)
REF_VIEWS = ((1.0, 1.0, 0.5, 0.5, 0), (0.8, 0.8, 0.5, 0.5, 0), (0.85, 0.85, 0, 0, 0), (0.85, 0.85, 1, 0, 0),
             (0.85, 0.85, 0, 1, 0), (0.85, 0.85, 1, 1, 0), (0.9, 0.9, 0.5, 0.5, 8), (0.9, 0.9, 0.5, 0.5, -8),
             (0.75, 0.75, 0.5, 0.5, 5), (0.75, 0.75, 0.5, 0.5, -5), (0.75, 0.75, 0.5, 0.5, 10),
             (0.75, 0.75, 0.5, 0.5, -10), (1.0, 0.8, 0.5, 0, 0), (1.0, 0.8, 0.5, 0.5, 0), (1.0, 0.8, 0.5, 1, 0),
             (0.8, 1.0, 0, 0.5, 0), (0.8, 1.0, 0.5, 0.5, 0), (0.8, 1.0, 1, 0.5, 0))
POOL_VIEWS = (1.0, 0.75)  # a pool image: as is, and its central 75 % (each view's best match per reference counts)


def thumbnail_descriptor(gray: np.ndarray, side: int = SIDE) -> np.ndarray:
    """``side * side`` float32 vector: area-resized thumbnail, minus its mean, divided by its norm (0 if flat)."""
    small = cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    if norm < FLAT_STD * side:  # std below FLAT_STD gray levels
        return np.zeros(side * side, np.float32)
    return small / norm


def _view(gray: np.ndarray, fx: float, fy: float, ax: float, ay: float, angle: float) -> np.ndarray:
    h, w = gray.shape
    if angle:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        gray = cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    ch, cw = max(1, round(h * fy)), max(1, round(w * fx))
    y, x = round((h - ch) * ay), round((w - cw) * ax)
    return gray[y : y + ch, x : x + cw]


def descriptor_views(gray: np.ndarray, reference: bool) -> np.ndarray:
    """``[v, d]`` descriptors of a uint8 grayscale image: ``len(POOL_VIEWS)`` centred views for a pool image,
    ``2 * len(REF_VIEWS)`` for a reference (each view and its mirror)."""
    if not reference:
        return np.stack([thumbnail_descriptor(_view(gray, frac, frac, 0.5, 0.5, 0)) for frac in POOL_VIEWS])
    out = []
    for fx, fy, ax, ay, angle in REF_VIEWS:
        v = _view(gray, fx, fy, ax, ay, angle)
        out += [thumbnail_descriptor(v), thumbnail_descriptor(np.ascontiguousarray(v[:, ::-1]))]
    return np.stack(out)
