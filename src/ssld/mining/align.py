"""Instance-level verification by aligned normalised cross-correlation (NCC), weight-free and cheap.

A copy is the source seen through a similarity transform (a crop, a rescale, a small rotation, maybe a mirror)
and a photometric change. Search that transform over a small grid - mirror or not, the share of the source the
copy covers, the rotation - with every translation at once (``cv2.matchTemplate``), score the best fit by NCC
(insensitive to brightness and contrast), first on 32 px thumbnails, then refine the best cell on 64 px ones.
The template is the central part of the copy (a rotated copy's black corners and most text overlays stay out).
Unlike SIFT this needs no keypoints, so smooth photographs and 28 px images are judged too; unlike a global
descriptor it aligns before comparing, so crops and rotations keep their score. Each image needs only a small
grayscale square kept from the hashing pass (:func:`square`), so no file is read again; only an ambiguous
verdict (:meth:`Aligner.hires`) reads the two best references and the copy again, at 128 px and with coarser
shapes kept, where look-alikes (other crops of the same boards, sea, foliage or bokeh) part.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIDE = 64  # stored square per image; its true aspect is restored from the image size
FLAT_STD = 2.0  # gray levels: a template this flat carries no evidence


def square(gray: np.ndarray, side: int = SIDE) -> np.ndarray:
    """``side x side`` uint8 grayscale image (area-resized, aspect squashed; :func:`restore` undoes it)."""
    interp = cv2.INTER_AREA if min(gray.shape) >= side else cv2.INTER_LINEAR
    return cv2.resize(gray, (side, side), interpolation=interp)


def load_gray(path: str, min_side: int = 0, long_side: bool = False) -> np.ndarray | None:
    """The file as a uint8 grayscale array (None if unreadable). With ``min_side``, a photograph whose short side
    (``long_side``: long side) is twice that or more is decoded at a reduced size that keeps it at least
    ``min_side`` (:func:`ssld.data.load_image_reduced`: a 20-megapixel JPEG ~10x faster); smaller files are read
    as they are."""
    if min_side:
        from ssld.data import image_size, load_image_reduced

        size = image_size(path)
        if size is None:
            return None
        if (max if long_side else min)(size) >= 2 * min_side:
            loaded = load_image_reduced(path, min_side, mode="L", long_side=long_side)
            return None if loaded is None else np.asarray(loaded[0])
    return cv2.imread(path, cv2.IMREAD_GRAYSCALE)


def restore(sq: np.ndarray, size: tuple[int, int], short: int, highpass: float = 0.0) -> np.ndarray:
    """A stored square back at its image's aspect (``size`` = (w, h)), short side ``short``, long side at most
    ``2 * short``; float32. With ``highpass`` > 0, minus its Gaussian blur of sigma ``highpass * short``: smooth
    gradients (sky, walls, vignetting), which correlate with any other smooth gradient, are taken out."""
    w, h = max(int(size[0]), 1), max(int(size[1]), 1)
    f = short / min(w, h)
    tw, th = min(round(w * f), 2 * short), min(round(h * f), 2 * short)
    img = cv2.resize(sq, (max(tw, 1), max(th, 1)), interpolation=cv2.INTER_AREA).astype(np.float32)
    if highpass > 0:
        img -= cv2.GaussianBlur(img, (0, 0), highpass * short, borderType=cv2.BORDER_REFLECT)
    return img


@dataclass(frozen=True)
class Grid:
    """The transforms searched: ``coverages`` (copy's extent / source's, along the binding side), ``angles``
    (degrees), mirrored or not; then the best cell refined at ``fine`` px by ``fine_cov`` and ``fine_deg``."""

    coverages: tuple[float, ...] = (1.0, 0.86, 0.74)
    angles: tuple[float, ...] = (0.0, -5.0, 5.0, -10.0, 10.0)
    inner: float = 0.8
    highpass: float = 0.125
    coarse: int = 32
    fine: int = 64
    fine_cov: tuple[float, ...] = (0.95, 1.0, 1.05)
    fine_deg: tuple[float, ...] = (-2.5, 0.0, 2.5)
    hires: int = 128
    radius: int = 3  # px at the fine size: a peak must stand out from positions farther than this
    hires_deg: tuple[float, ...] = (-1.25, 0.0, 1.25)
    # the 128 px redo keeps coarser shapes (blur of sigma 0.25 x side taken out, not 0.125): look-alikes with no
    # fine detail (bokeh, soft stripes, adjacent crops of one sky) part on them (docs/mining.md has the curve)
    hires_highpass: float = 0.25


def _rotated(ref: np.ndarray, angle: float) -> np.ndarray:
    if not angle:
        return ref
    h, w = ref.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(ref, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _template(pool: np.ndarray, pool_size: tuple[int, int], ref_shape: tuple[int, int], cov: float, flip: bool,
              inner: float) -> np.ndarray | None:
    """The copy scaled so that it covers ``cov`` of the reference along its binding side, central part only."""
    w, h = max(int(pool_size[0]), 1), max(int(pool_size[1]), 1)
    rh, rw = ref_shape
    s = min(cov, 1.0) * min(rw / w, rh / h)
    tw, th = max(4, round(w * s * inner)), max(4, round(h * s * inner))
    if tw > rw or th > rh:
        return None
    full = cv2.resize(pool, (max(4, round(w * s)), max(4, round(h * s))), interpolation=cv2.INTER_AREA)
    y, x = (full.shape[0] - th) // 2, (full.shape[1] - tw) // 2
    t = full[y : y + th, x : x + tw].astype(np.float32)
    if flip:
        t = np.ascontiguousarray(t[:, ::-1])
    return t if float(t.std()) >= FLAT_STD else None


def _best(ref: np.ndarray, templates: dict, angles, cells, radius: int = 0) -> tuple[float, tuple, float]:
    """Best NCC over angles x cells and every translation, its cell, and (``radius`` > 0) its peak ratio."""
    best, arg, where = -1.0, (), None
    for angle in angles:
        rot = _rotated(ref, angle)
        for cell in cells:
            t = templates.get(cell)
            if t is None or t.shape[0] > rot.shape[0] or t.shape[1] > rot.shape[1]:
                continue
            ncc = cv2.matchTemplate(rot, t, cv2.TM_CCOEFF_NORMED)
            score = float(cv2.minMaxLoc(ncc)[1])
            if score > best:
                best, arg, where = score, (*cell, angle), ncc
    return best, arg, _peak_ratio(where, radius) if radius and where is not None else 100.0


def _peak_ratio(ncc: np.ndarray, radius: int) -> float:
    """``(1 - best NCC farther than radius px from the peak) / (1 - peak NCC)``: about 1 when a shifted
    position fits as well (one straight edge, parallel stripes: the aperture problem), large for a distinct
    match. 100 when no position lies that far."""
    y, x = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    off = ncc.copy()
    off[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1] = -1.0
    if off.size == 0 or off.max() <= -1.0:
        return 100.0
    return min((1.0 - max(float(off.max()), 0.0)) / max(1.0 - float(ncc[y, x]), 1e-6), 100.0)


class Aligner:
    """Scores one pool image against its candidate references: best aligned NCC per reference."""

    def __init__(self, grid: Grid | None = None):
        self.grid = grid or Grid()

    def scores(self, pool_sq: np.ndarray, pool_size, refs: list[tuple[np.ndarray, tuple[int, int]]],
               refine: int = 2, cells: list | None = None, peaks: np.ndarray | None = None) -> np.ndarray:
        """``refs`` = [(stored square, (w, h))]: coarse NCC over the grid for each, then the ``refine`` best
        refined at the fine size. Returns ``[len(refs)]`` scores in [-1, 1] (-1: nothing to compare); ``cells``
        (a list) receives each reference's best (coverage, mirrored, angle), ``peaks`` (an array) the refined
        ones' peak ratios (:func:`_peak_ratio`, ``grid.radius`` px at the fine size)."""
        g = self.grid
        pool_c = restore(pool_sq, pool_size, g.coarse, g.highpass)
        grid = [(c, f) for f in (False, True) for c in g.coverages]
        coarse = np.full(len(refs), -1.0, np.float32)
        where: list[tuple] = [()] * len(refs)
        cache: dict[tuple[int, int], dict] = {}
        for j, (sq, size) in enumerate(refs):
            ref = restore(sq, size, g.coarse, g.highpass)
            if ref.shape not in cache:
                cache[ref.shape] = {cell: _template(pool_c, pool_size, ref.shape, cell[0], cell[1], g.inner)
                                    for cell in grid}
            coarse[j], where[j], _ = _best(ref, cache[ref.shape], g.angles, grid)
        out = coarse.copy()
        pool_f = restore(pool_sq, pool_size, g.fine, g.highpass)
        for j in np.argsort(-coarse)[:refine]:
            if coarse[j] <= -1 or not where[j]:
                continue
            cov, flip, angle = where[j]
            ref = restore(refs[j][0], refs[j][1], g.fine, g.highpass)
            fine_cells = [(min(1.0, cov * k), flip) for k in g.fine_cov]
            templates = {cell: _template(pool_f, pool_size, ref.shape, cell[0], cell[1], g.inner)
                         for cell in fine_cells}
            score, arg, peak = _best(ref, templates, [angle + d for d in g.fine_deg], fine_cells, g.radius)
            out[j] = max(score, -1.0)
            where[j] = arg or where[j]
            if peaks is not None:
                peaks[j] = peak
        if cells is not None:
            cells[:] = where
        return out

    def hires(self, pool: np.ndarray, refs: list[np.ndarray], cells: list[tuple],
              peaks: np.ndarray | None = None) -> np.ndarray:
        """NCC of full grayscale images (pool copy, references) at ``grid.hires`` px, at each reference's best
        cell from :meth:`scores` (angle refined by ``hires_deg``): details the 64 px squares blur away.
        ``peaks`` receives the peak ratios (radius scaled to the size)."""
        g = self.grid
        side = g.hires
        pool_size = (pool.shape[1], pool.shape[0])
        pool_h = restore(pool, pool_size, side, g.hires_highpass)
        out = np.full(len(refs), -1.0, np.float32)
        for j, (ref, cell) in enumerate(zip(refs, cells, strict=True)):
            if ref is None or not cell:
                continue
            ref_h = restore(ref, (ref.shape[1], ref.shape[0]), side, g.hires_highpass)
            cov, flip, angle = cell
            t = {(cov, flip): _template(pool_h, pool_size, ref_h.shape, cov, flip, g.inner)}
            score, _, peak = _best(ref_h, t, [angle + d for d in g.hires_deg], [(cov, flip)],
                                   g.radius * side // g.fine)
            out[j] = max(score, -1.0)
            if peaks is not None:
                peaks[j] = peak
        return out
