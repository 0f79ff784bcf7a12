"""Pixel-level verification by the images' fine-grain residual: what a crop, a flip, a colour change or an overlay
keeps and a look-alike never has.

Two crops of one smooth sky, bokeh or wall share every shape the alignment and SIFT can see; what they do not
share is their grain (sensor noise, film grain, texture below a pixel or two). A copy made without resampling
- cropped, mirrored, colour-jittered, overlaid with text, recompressed - keeps its source's grain pixel for pixel.
So: take each image's residual at its own resolution (minus its Gaussian blur of sigma 1 px), clip it at
``CLIP`` robust standard deviations (edges and lines, which any two crops of one scene share, would otherwise
dominate it), and slide the copy's central part, as is and mirrored, over each candidate reference
(``cv2.matchTemplate``, every translation at once). The source scores 0.3-1.0, other crops of the same
photograph 0.02-0.15 (docs/mining.md has the distributions). Resized, rotated or blurred copies lose the grain;
the alignment and SIFT judge those.
"""

from __future__ import annotations

import cv2
import numpy as np

from ssld.utils.lru import Lru

SIGMA = 1.0  # px: the blur taken out, leaving the finest grain
CLIP = 2.5  # robust standard deviations (1.4826 x median absolute residual) the residual is clipped at
INNER = 0.8  # share of the copy's width and height (centred) slid over the reference
MIN_SIDE = 16  # px: a template smaller than this says nothing
MIN_GRAIN = 0.25  # gray levels: a template whose residual varies less has no grain (a uniform or saturated image)
FLOOR = 0.03  # unrelated grain correlates up to ~0.1: a ratio to the next candidate counts it as at least this
LOW = 32  # px: the short side at which which-way-round is judged before the grain is compared
WAY_MARGIN = 0.05  # NCC: one way round must fit this much better at LOW px for the other to be left out
# references compared at full size per pool image: those the copy fits best at LOW px (the others, which a copy
# that kept its grain cannot be, count as uncorrelated in the ratio test): 29-38 % fewer comparisons on the photo
# benchmarks for one copy in 1,500 (docs/mining.md)
TOP = 4
# pixels above which an image's grain is not compared: sliding it over every position costs with the pixels
# (~20 ms per reference at 1 MP, ~100 ms at 3 MP; up to TOP references per pool image); such photographs have
# the detail the alignment and SIFT need (docs/mining.md)
MAX_PIXELS = 1_000_000


def residual(gray: np.ndarray) -> np.ndarray:
    """The grain of a uint8 grayscale image: itself minus its Gaussian blur (``SIGMA``), clipped at ``CLIP``
    robust standard deviations; float32, same shape."""
    return clipped_residual(gray)[0]


def clipped_residual(gray: np.ndarray, clip: float | None = None) -> tuple[np.ndarray, float]:
    """:func:`residual` and the level it was clipped at: ``CLIP`` x 1.4826 x its median absolute value, or
    ``clip`` when that was computed before (the median is ~40 % of the work at 450 px)."""
    g = gray.astype(np.float32)
    r = g - cv2.GaussianBlur(g, (0, 0), SIGMA, borderType=cv2.BORDER_REFLECT)
    c = CLIP * 1.4826 * float(np.median(np.abs(r))) + 1e-3 if clip is None else clip
    return np.clip(r, -c, c, out=r), c


def _template(res: np.ndarray) -> np.ndarray | None:
    h, w = res.shape
    th, tw = round(h * INNER), round(w * INNER)
    if min(th, tw) < MIN_SIDE:
        return None
    y, x = (h - th) // 2, (w - tw) // 2
    t = np.ascontiguousarray(res[y : y + th, x : x + tw])
    return t if float(t.std()) >= MIN_GRAIN else None  # NCC of a constant is undefined (OpenCV says 1)


def _read(path: str) -> np.ndarray | None:
    """The file as uint8 grayscale; None when unreadable or over ``MAX_PIXELS`` (its header says so before any
    decoding)."""
    from ssld.data import image_size

    size = image_size(path)
    if size is None or size[0] * size[1] > MAX_PIXELS:
        return None
    return cv2.imread(path, cv2.IMREAD_GRAYSCALE)


def _small(gray: np.ndarray, k: float) -> np.ndarray:
    """``gray`` area-resized by ``1 / k``, float32."""
    h, w = gray.shape
    return cv2.resize(gray, (max(1, round(w / k)), max(1, round(h / k))), interpolation=cv2.INTER_AREA).astype(
        np.float32)


def fits(pool_small: np.ndarray, ref_small: np.ndarray) -> tuple[float, float] | None:
    """How well the copy fits the reference at ``LOW`` px, as is and mirrored: the NCC of the copy's centre
    (``pool_small``: the copy at the reference's scale, that is, resized as the reference was to ``LOW`` px on its
    short side), best over every position in ``ref_small``; None when the centre is too small or flat to say.
    A copy that keeps its grain was not resampled, so at this size it is the reference's own content."""
    t = pool_small
    h, w = t.shape
    th, tw = round(h * INNER), round(w * INNER)
    t = t[(h - th) // 2 : (h - th) // 2 + th, (w - tw) // 2 : (w - tw) // 2 + tw]
    if min(th, tw) < 2 or th > ref_small.shape[0] or tw > ref_small.shape[1] or float(t.std()) < 1.0:
        return None
    a, b = (float(cv2.matchTemplate(ref_small, np.ascontiguousarray(x), cv2.TM_CCOEFF_NORMED).max())
            for x in (t, t[:, ::-1]))
    return a, b


def ways(fit: tuple[float, float] | None) -> tuple[bool, bool]:
    """Which ways round (as is, mirrored) are compared at full size: one is left out when the other fits
    ``WAY_MARGIN`` better at ``LOW`` px (39 % fewer comparisons on the photo benchmark, no verdict changed);
    both when :func:`fits` could not say (smooth or symmetric content fits both alike anyway)."""
    return (True, True) if fit is None else (fit[0] + WAY_MARGIN >= fit[1], fit[1] + WAY_MARGIN >= fit[0])


class NoiseVerifier:
    """Grain correlation of one pool image with its candidate references (reference residuals cached: the same
    references come back for many pool images)."""

    def __init__(self, cache_size: int = 512, top: int = TOP):
        self.top = top
        self._cache = Lru(cache_size)  # path -> (residual, grayscale at LOW px, its scale) or None
        # every reference's clip level, kept when its residual leaves the cache: with many references the same
        # one is read again and again
        self._clip: dict[str, float] = {}

    def _reference(self, path: str) -> tuple[np.ndarray, np.ndarray, float] | None:
        """A reference's residual, its grayscale at ``LOW`` px on the short side and that scale's factor."""
        return self._cache.get_or_make(path, lambda: self._read_reference(path))

    def _read_reference(self, path: str) -> tuple[np.ndarray, np.ndarray, float] | None:
        gray = _read(path)
        if gray is None:
            return None
        k = min(gray.shape) / LOW
        res, self._clip[path] = clipped_residual(gray, self._clip.get(path))
        return res, _small(gray, k), k

    def scores(self, pool_path: str, ref_paths: list[str]) -> np.ndarray:
        """Best grain NCC of the pool image's centre (as is or mirrored) over every position in each reference,
        at both images' own resolution, for the ``top`` references it fits best at ``LOW`` px; -1 where it is not
        compared (one of the others; unreadable, too small, without grain, over ``MAX_PIXELS``, or the copy is
        larger than the reference: it was scaled up, and resampling leaves no grain to compare)."""
        out = np.full(len(ref_paths), -1.0, np.float32)
        gray = _read(pool_path)
        if gray is None:
            return out
        t = _template(residual(gray))
        if t is None:
            return out
        mirrored = np.ascontiguousarray(t[:, ::-1])
        pool_small: dict[float, np.ndarray] = {}  # the copy at each reference scale met
        todo = []  # (rank key, reference index, residual, fit at LOW px)
        for j, path in enumerate(ref_paths):
            cached = self._reference(path)
            if cached is None or t.shape[0] > cached[0].shape[0] or t.shape[1] > cached[0].shape[1]:
                continue
            ref, ref_small, k = cached
            if k not in pool_small:
                pool_small[k] = _small(gray, k)
            fit = fits(pool_small[k], ref_small)
            todo.append((np.inf if fit is None else max(fit), j, ref, fit))
        for _, j, ref, fit in sorted(todo, key=lambda x: -x[0])[: self.top]:
            best = max(float(cv2.matchTemplate(ref, tpl, cv2.TM_CCOEFF_NORMED).max())
                       for tpl, way in zip((t, mirrored), ways(fit), strict=True) if way)
            out[j] = min(best, 1.0) if np.isfinite(best) else -1.0
        return out
