"""Geometric verification of candidate pairs: SIFT keypoints, Lowe's ratio test, RANSAC similarity transform.

A copy of a photograph (resized, cropped, rotated, recompressed) keeps many keypoints that one similarity
transform maps onto the source; two different photographs of similar things do not. The mirrored pool image
is tried too, since a flip is not a similarity transform; its features come from the image's own (positions
mirrored, descriptor entries permuted), which halves the detection work. Only meaningful when both images are
large enough (about 64 px on the short side): small images yield too few keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ssld.utils.lru import Lru

RATIO = 0.75
MIN_KEYPOINTS = 8
MIN_SCALE = 0.2  # a copy is at most 5x smaller or larger than its source
CONTRAST = 0.01  # SIFT contrast threshold (OpenCV: 0.04): more keypoints in smooth photos (docs/mining.md)
# Cost bounds for large images (ImageNet's ~500 x 375): longer side at most MAX_SIDE px, at most MAX_FEATURES
# keypoints (the strongest). At 384-512 px they cut SIFT's time 3.5x with the same copies found; images up to
# 256 px (the 128-256 px photo benchmark) rarely have more keypoints (docs/mining.md has both measurements).
MAX_SIDE = 320
MAX_FEATURES = 1000


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
    """The image as uint8 grayscale, its longer side at most ``max_side``; a photograph of twice that or more is
    decoded at a reduced scale first (:func:`ssld.mining.align.load_gray`)."""
    from ssld.mining.align import load_gray

    img = load_gray(path, max_side, long_side=True)
    if img is None:
        return None
    scale = max_side / max(img.shape)
    if scale < 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return img


def _mirror_permutation() -> np.ndarray:
    """Where each of the 128 SIFT descriptor entries (4 x 4 cells x 8 orientation bins, row-major as OpenCV lays
    them out) goes when the image is mirrored left-right: in the mirrored keypoint's frame the cell rows swap
    and every gradient orientation changes sign."""
    row, col, ori = np.meshgrid(np.arange(4), np.arange(4), np.arange(8), indexing="ij")
    return (((3 - row) * 4 + col) * 8 + (8 - ori) % 8).ravel()


MIRROR = _mirror_permutation()


@dataclass
class Features:
    """SIFT keypoint positions ``points [n, 2]`` (x, y; float32), descriptors ``[n, 128]`` (None if none) and
    the image width (to mirror the positions)."""

    points: np.ndarray
    descriptors: np.ndarray | None
    width: int

    @classmethod
    def empty(cls) -> Features:
        return cls(np.zeros((0, 2), np.float32), None, 0)

    @classmethod
    def detect(cls, sift: cv2.SIFT, img: np.ndarray) -> Features:
        keypoints, descriptors = sift.detectAndCompute(img, None)
        points = np.float32([k.pt for k in keypoints]).reshape(-1, 2)
        return cls(points, descriptors, img.shape[1])

    def mirrored(self) -> Features:
        """The features of the left-right mirrored image, without detecting again: positions mirrored, each
        descriptor's entries permuted (:data:`MIRROR`). They equal a detection on the mirrored image for most
        keypoints (median relative descriptor difference 0, 90th percentile 0.07, on 40 photo crops)."""
        points = self.points.copy()
        points[:, 0] = self.width - 0.5 - points[:, 0]  # OpenCV's SIFT positions sit half a pixel off centres
        return Features(points, None if self.descriptors is None else self.descriptors[:, MIRROR], self.width)


class SiftVerifier:
    """Counts RANSAC inliers between a pool image and references; keeps recent references' features in an LRU
    cache."""

    def __init__(self, max_side: int = MAX_SIDE, ratio: float = RATIO, reproj_px: float = 4.0, cache: int = 1024,
                 contrast: float | None = None, max_features: int = MAX_FEATURES):
        self.sift = cv2.SIFT_create(nfeatures=max_features, contrastThreshold=CONTRAST if contrast is None else contrast)
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)
        self.max_side, self.ratio, self.reproj_px = max_side, ratio, reproj_px
        self._cache = Lru(cache)

    def _detect(self, path: str) -> Features:
        img = _gray(path, self.max_side)
        return Features.empty() if img is None else Features.detect(self.sift, img)

    def _reference(self, path: str) -> Features:
        """A reference's features, from the LRU cache when it was seen lately (pool images are not cached: they
        are seen once and would push the references out)."""
        return self._cache.get_or_make(path, lambda: self._detect(path))

    def keypoints(self, path: str) -> int:
        """How many keypoints SIFT finds in the image (0 if unreadable): how much detail it has to match."""
        return len(self._detect(path).points)

    def _inliers(self, a: Features, b: Features) -> tuple[int, int]:
        des_a, des_b = a.descriptors, b.descriptors
        if des_a is None or des_b is None or len(des_a) < 2 or len(des_b) < 2:
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
        src = a.points[[m.queryIdx for m in good]]
        dst = b.points[[m.trainIdx for m in good]]
        fit, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=self.reproj_px)
        if fit is None or mask is None:
            return 0, len(good)
        scale = float(np.hypot(fit[0, 0], fit[1, 0]))
        if not MIN_SCALE <= scale <= 1 / MIN_SCALE:
            return 0, len(good)
        return int(mask.sum()), len(good)

    def verify_all(self, pool_path: str, ref_paths: list[str]) -> list[Verdict]:
        """One verdict per reference, each the best of (pool, ref) and (mirrored pool, ref); the pool image's
        keypoints are detected once for all of them and both orientations."""
        pool = self._detect(pool_path)
        views = (pool, pool.mirrored())
        out = []
        for ref_path in ref_paths:
            ref = self._reference(ref_path)
            best = max(self._inliers(v, ref) for v in views)
            out.append(Verdict(best[0], best[1], (len(pool.points), len(ref.points))))
        return out
