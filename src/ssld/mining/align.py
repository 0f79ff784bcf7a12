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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np

from ssld.utils.lru import Lru

SIDE = 64  # stored square per image; its true aspect is restored from the image size
FLAT_STD = 2.0  # gray levels: a template this flat carries no evidence
CACHE = 2048  # references whose rotated coarse views (and their spectra, ~40 KB each at 32 px) an Aligner keeps
HIRES_CACHE = 256  # references whose restored 128 px views (~64-128 KB each) an Aligner keeps


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
        sigma = highpass * short
        img -= _blur_matrix(img.shape[0], sigma) @ img @ _blur_matrix(img.shape[1], sigma).T
    return img


@lru_cache(maxsize=256)
def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    """``cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)`` along one axis of length ``n`` of a
    float32 image, as an ``n x n`` matrix: OpenCV's kernel (8 sigma + 1 taps) with its reflections folded in.
    Two such products blur a restored image 3x (32 px) to 8x (128 px) faster than GaussianBlur, whose kernel
    is wider than these images, with the same values to float rounding (tests/test_mining_align.py)."""
    taps = round(sigma * 8 + 1) | 1
    kernel = cv2.getGaussianKernel(taps, sigma, cv2.CV_64F).ravel()
    pos = np.mod(np.arange(n)[:, None] + np.arange(taps)[None] - taps // 2, 2 * n)
    pos = np.where(pos >= n, 2 * n - 1 - pos, pos)  # reflected (repeatedly, for a kernel wider than the image)
    out = np.zeros((n, n))
    np.add.at(out, (np.repeat(np.arange(n), taps), pos.ravel()), np.tile(kernel, n))
    return out.astype(np.float32)


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


class _Rotations(NamedTuple):
    """A reference's coarse view at each angle of the grid ``[angles, h, w]`` and their 2-D spectra."""

    images: np.ndarray
    spectra: np.ndarray


def _coarse(pool: np.ndarray, pool_size, refs: list[_Rotations], shape: tuple[int, int],
            g: Grid) -> tuple[np.ndarray, list[tuple]]:
    """Best NCC of the copy against each reference (all of one ``shape``) over the coarse grid and every
    translation, and its cell (coverage, mirrored, angle); -1 and () when no template fits.

    The same numbers as ``cv2.matchTemplate(..., TM_CCOEFF_NORMED)`` per reference, angle and cell (up to float
    rounding), but every correlation of one template size at once, through the references' cached spectra:
    ~210 tiny matchTemplate calls per pool image were most of the alignment's time."""
    h, w = shape
    images = np.stack([r.images for r in refs])  # [refs, angles, h, w]
    spectra = np.stack([r.spectra for r in refs])
    n = images.shape[0] * images.shape[1]
    area1, area2 = cv2.integral2(images.reshape(n * h, w), sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
    grid = [(c, f) for f in (False, True) for c in g.coverages]
    scores = np.full((len(refs), len(g.angles), len(grid)), -np.inf)
    for cov in g.coverages:
        cells = [k for k, cell in enumerate(grid) if cell[0] == cov]
        templates = [_template(pool, pool_size, shape, cov, grid[k][1], g.inner) for k in cells]
        kept = [(k, t) for k, t in zip(cells, templates, strict=True) if t is not None]
        if not kept:
            continue
        th, tw = kept[0][1].shape
        centred = np.zeros((len(kept), h, w), np.float32)
        norms = np.empty(len(kept))
        for m, (_, t) in enumerate(kept):
            centred[m, :th, :tw] = t - t.mean(dtype=np.float64)
            norms[m] = np.sqrt(np.square(centred[m], dtype=np.float64).sum())
        # the inverse 2-D transform one axis at a time, keeping only the rows of valid positions in between
        rows = np.fft.ifft(spectra[:, :, None] * np.conj(np.fft.rfft2(centred))[None, None], axis=-2)
        corr = np.fft.irfft(rows[..., : h - th + 1, :], n=w, axis=-1)
        num = corr[..., : w - tw + 1].astype(np.float64)  # [refs, angles, templates, y, x]
        s1 = _window(area1, n, h, th, tw)
        var = np.maximum(_window(area2, n, h, th, tw) - s1 * s1 / (th * tw), 0.0)
        den = np.sqrt(var).reshape(*images.shape[:2], 1, *var.shape[1:]) * norms[:, None, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            ncc = num / den
        # OpenCV's rule where rounding pushes past +-1 (flat windows): up to 1.125 clipped, beyond (or 0/0) 0
        ncc = np.where(np.abs(ncc) < 1.125, np.clip(ncc, -1.0, 1.0), 0.0)
        scores[:, :, [k for k, _ in kept]] = ncc.max(axis=(-2, -1))
    flat = scores.reshape(len(refs), -1)  # angle-major, cell-minor: the first best wins, as in a loop over them
    first = flat.argmax(axis=1)
    best, cells_of = [], []
    for j, a in enumerate(first):
        score = float(flat[j, a])
        if score > -1.0:
            cov, flip = grid[a % len(grid)]
            best.append(score)
            cells_of.append((cov, flip, g.angles[a // len(grid)]))
        else:
            best.append(-1.0)
            cells_of.append(())
    return np.array(best, np.float32), cells_of


def _window(area: np.ndarray, tiles: int, h: int, th: int, tw: int) -> np.ndarray:
    """Sums over every ``th x tw`` window inside each of ``tiles`` images of height ``h`` stacked into one, from
    the stack's summed-area table (``cv2.integral2``): ``[tiles, h - th + 1, w - tw + 1]``."""
    top = (np.arange(tiles)[:, None] * h + np.arange(h - th + 1)[None]).ravel()
    a, b = area[top], area[top + th]
    out = b[:, tw:] - b[:, :-tw] - a[:, tw:] + a[:, :-tw]
    return out.reshape(tiles, h - th + 1, -1)


class Aligner:
    """Scores one pool image against its candidate references: best aligned NCC per reference."""

    def __init__(self, grid: Grid | None = None):
        self.grid = grid or Grid()
        self._coarse_views, self._hires_views = Lru(CACHE), Lru(HIRES_CACHE)  # by reference key

    def _rotations(self, sq: np.ndarray, size, key) -> _Rotations:
        """A reference's coarse views at every angle of the grid and their spectra, cached by ``key``."""
        def make() -> _Rotations:
            g = self.grid
            ref = restore(sq, size, g.coarse, g.highpass)
            images = np.stack([_rotated(ref, a) for a in g.angles])
            return _Rotations(images, np.fft.rfft2(images))

        return make() if key is None else self._coarse_views.get_or_make(key, make)

    def scores(self, pool_sq: np.ndarray, pool_size, refs: list[tuple[np.ndarray, tuple[int, int]]],
               refine: int = 2, cells: list | None = None, peaks: np.ndarray | None = None,
               keys: Sequence | None = None) -> np.ndarray:
        """``refs`` = [(stored square, (w, h))]: coarse NCC over the grid for each, then the ``refine`` best
        refined at the fine size. Returns ``[len(refs)]`` scores in [-1, 1] (-1: nothing to compare); ``cells``
        (a list) receives each reference's best (coverage, mirrored, angle), ``peaks`` (an array) the refined
        ones' peak ratios (:func:`_peak_ratio`, ``grid.radius`` px at the fine size). With ``keys`` (one hashable
        per reference, e.g. its row), each reference's rotated coarse views are cached (LRU, ``CACHE`` of them)."""
        g = self.grid
        pool_c = restore(pool_sq, pool_size, g.coarse, g.highpass)
        coarse = np.full(len(refs), -1.0, np.float32)
        where: list[tuple] = [()] * len(refs)
        by_shape: dict[tuple[int, int], list[int]] = {}
        stacks = [self._rotations(sq, size, None if keys is None else keys[j]) for j, (sq, size) in enumerate(refs)]
        for j, stack in enumerate(stacks):
            by_shape.setdefault(stack.images.shape[1:], []).append(j)
        for shape, rows in by_shape.items():
            best, cells_of = _coarse(pool_c, pool_size, [stacks[j] for j in rows], shape, g)
            for j, score, cell in zip(rows, best, cells_of, strict=True):
                coarse[j], where[j] = score, cell
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

    def hires(self, pool: np.ndarray, refs: Sequence[np.ndarray | Callable[[], np.ndarray | None] | None],
              cells: list[tuple], peaks: np.ndarray | None = None, keys: Sequence | None = None) -> np.ndarray:
        """NCC of full grayscale images (pool copy, references) at ``grid.hires`` px, at each reference's best
        cell from :meth:`scores` (angle refined by ``hires_deg``): details the 64 px squares blur away.
        ``peaks`` receives the peak ratios (radius scaled to the size). A reference may be given as a function
        that reads it; with ``keys``, each reference's restored view is cached (LRU, ``HIRES_CACHE`` of them) and
        a cached one is not read again."""
        g = self.grid
        side = g.hires
        pool_size = (pool.shape[1], pool.shape[0])
        pool_h = restore(pool, pool_size, side, g.hires_highpass)
        out = np.full(len(refs), -1.0, np.float32)
        for j, (ref, cell) in enumerate(zip(refs, cells, strict=True)):
            if not cell:
                continue
            def make(ref=ref) -> np.ndarray | None:
                return _hires_view(ref() if callable(ref) else ref, side, g.hires_highpass)

            ref_h = make() if keys is None else self._hires_views.get_or_make(keys[j], make)
            if ref_h is None:
                continue
            cov, flip, angle = cell
            t = {(cov, flip): _template(pool_h, pool_size, ref_h.shape, cov, flip, g.inner)}
            score, _, peak = _best(ref_h, t, [angle + d for d in g.hires_deg], [(cov, flip)],
                                   g.radius * side // g.fine)
            out[j] = max(score, -1.0)
            if peaks is not None:
                peaks[j] = peak
        return out


def _hires_view(ref: np.ndarray | None, side: int, highpass: float) -> np.ndarray | None:
    return None if ref is None else restore(ref, (ref.shape[1], ref.shape[0]), side, highpass)
