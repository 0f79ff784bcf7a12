"""Geometric verification of candidate pairs: SIFT keypoints, Lowe's ratio test, RANSAC similarity transform.

A copy of a photograph (resized, cropped, rotated, recompressed) keeps many keypoints that one similarity
transform maps onto the source; two different photographs of similar things do not. The mirrored pool image
is tried too, since a flip is not a similarity transform. Only meaningful when both images are large enough
(about 64 px on the short side): small images yield too few keypoints.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

RATIO = 0.75
MIN_KEYPOINTS = 8
MIN_SCALE = 0.2  # a copy is at most 5x smaller or larger than its source
CONTRAST = 0.01  # SIFT contrast threshold (OpenCV: 0.04): more keypoints in smooth photos (docs/mining.md)


@dataclass
class Verdict:
    """Inliers of the best geometric fit, matches that passed the ratio test, and keypoints found per image."""

    inliers: int
    matches: int
    keypoints: tuple[int, int]

    @property
    def conclusive(self) -> bool:
        """Both images had enough keypoints for the count of inliers to mean something."""
        return min(self.keypoints) >= MIN_KEYPOINTS


def _gray(path: str, max_side: int) -> np.ndarray | None:
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if img is None:
        return None
    scale = max_side / max(img.shape)
    if scale < 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return img


class SiftVerifier:
    """Counts RANSAC inliers between a pool image and a reference; keeps recent descriptors in an LRU cache."""

    def __init__(self, max_side: int = 512, ratio: float = RATIO, reproj_px: float = 4.0, cache: int = 1024,
                 contrast: float | None = None):
        self.sift = cv2.SIFT_create(contrastThreshold=CONTRAST if contrast is None else contrast)
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)
        self.max_side, self.ratio, self.reproj_px = max_side, ratio, reproj_px
        self._cache: OrderedDict[tuple[str, bool], tuple] = OrderedDict()
        self._cache_size = cache

    def _features(self, path: str, mirror: bool = False) -> tuple:
        key = (path, mirror)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        img = _gray(path, self.max_side)
        if img is not None and mirror:
            img = cv2.flip(img, 1)
        feats = ((), None) if img is None else self.sift.detectAndCompute(img, None)
        self._cache[key] = feats
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return feats

    def keypoints(self, path: str) -> int:
        """How many keypoints SIFT finds in the image (0 if unreadable): how much detail it has to match."""
        return len(self._features(path)[0])

    def _inliers(self, a: tuple, b: tuple) -> tuple[int, int]:
        (kp_a, des_a), (kp_b, des_b) = a, b
        if des_a is None or des_b is None or len(kp_a) < 2 or len(kp_b) < 2:
            return 0, 0
        pairs = self.matcher.knnMatch(des_a, des_b, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < self.ratio * p[1].distance]
        # one match per reference keypoint: repetitive texture otherwise piles matches onto one point and a
        # degenerate (zero-scale) transform "explains" them all
        unique: dict[int, cv2.DMatch] = {}
        for m in good:
            if m.trainIdx not in unique or m.distance < unique[m.trainIdx].distance:
                unique[m.trainIdx] = m
        good = list(unique.values())
        if len(good) < 3:
            return 0, len(good)
        src = np.float32([kp_a[m.queryIdx].pt for m in good])
        dst = np.float32([kp_b[m.trainIdx].pt for m in good])
        fit, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=self.reproj_px)
        if fit is None or mask is None:
            return 0, len(good)
        scale = float(np.hypot(fit[0, 0], fit[1, 0]))
        if not MIN_SCALE <= scale <= 1 / MIN_SCALE:
            return 0, len(good)
        return int(mask.sum()), len(good)

    def verify(self, pool_path: str, ref_path: str) -> Verdict:
        """Best of (pool, ref) and (mirrored pool, ref)."""
        ref = self._features(ref_path)
        best = (0, 0)
        n_pool = 0
        for mirror in (False, True):
            feats = self._features(pool_path, mirror)
            n_pool = len(feats[0])
            best = max(best, self._inliers(feats, ref))
        return Verdict(best[0], best[1], (n_pool, len(ref[0])))
