"""Colour signatures: what the grayscale checks cannot see, kept from the hashing pass (a few floats per image).

Every other dedup check works on grayscale, and two cases need colour:

* a crop with little detail (sky, water, a wall) is told from other crops of the same sky only by its thumbnail
  (a smooth gradient) and its colour. An unedited copy keeps its source's colour to within a just-noticeable
  difference (CIE76 delta E about 1) at its centre, where crops, rotations and most text overlays leave it alone;
  another crop of the same sky is a little bluer or brighter (:func:`delta_e`, the ``colour`` rule);
* two different objects of one shape (a blue and a pink cup) align in grayscale. Their hues disagree where a
  copy's agree even after a brightness, contrast or saturation change, since those keep the hue
  (:func:`hue_agreement`, the veto).
"""

from __future__ import annotations

import cv2
import numpy as np

SIDE = 32  # px, short side the signature is computed at
CENTRE = 0.6  # the central share of each side whose mean colour is kept
HUE_BINS = 24
DE_FLOOR = 0.5  # delta E under which colour differences are noise (JPEG, resampling): ratios are taken from here
CHROMA_MIN = 2.0  # Lab units: an image greyer than this on average has no hue to compare
WIDTH = 3 + HUE_BINS + 1  # mean L*a*b* of the centre, chroma-weighted hue histogram, mean chroma


def colour_signature(rgb: np.ndarray) -> np.ndarray:
    """``[WIDTH]`` float32 of a uint8 RGB (or grayscale) image: its centre's mean CIE L*a*b*, its hue histogram
    (each pixel weighted by its chroma, summing to 1; zeros for a grey image) and its mean chroma."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    h, w = rgb.shape[:2]
    f = SIDE / max(min(h, w), 1)
    small = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))),
                       interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    sh, sw = lab.shape[:2]
    ch, cw = max(1, round(sh * CENTRE)), max(1, round(sw * CENTRE))
    y, x = (sh - ch) // 2, (sw - cw) // 2
    mean = lab[y : y + ch, x : x + cw].reshape(-1, 3).mean(0)
    a, b = lab[..., 1].ravel(), lab[..., 2].ravel()
    chroma = np.hypot(a, b)
    hist, _ = np.histogram(np.arctan2(b, a), bins=HUE_BINS, range=(-np.pi, np.pi), weights=chroma)
    total = float(hist.sum())
    hist = hist / total if total > 0 else np.zeros(HUE_BINS)
    return np.concatenate([mean, hist, [chroma.mean()]]).astype(np.float32)


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE76 colour difference of the centres' mean colours (rows of signatures, broadcast)."""
    return np.linalg.norm(a[..., :3] - b[..., :3], axis=-1)


def hue_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bhattacharyya coefficient of the hue histograms (1: the same hues; 0: none shared); NaN where either
    image is too grey (mean chroma under ``CHROMA_MIN``) for its hue to mean anything."""
    bc = np.sqrt(a[..., 3 : 3 + HUE_BINS] * b[..., 3 : 3 + HUE_BINS]).sum(-1)
    grey = np.minimum(a[..., -1], b[..., -1]) < CHROMA_MIN
    return np.where(grey, np.nan, bc)
