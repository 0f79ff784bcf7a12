"""Verification of shortlisted pairs, each pass over the pool images that need it: the aligned NCC
(:mod:`ssld.mining.align`), the grain (:mod:`ssld.mining.noise`) and SIFT + RANSAC (:mod:`ssld.mining.sift`),
in forked workers. Each returns its best verdict per pool image as a :class:`Match`;
:func:`ssld.mining.dedup.decide` applies the thresholds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from ssld.mining.forking import forked_pool, single_threaded_blas
from ssld.mining.rules import Thresholds
from ssld.mining.sift import SiftVerifier

if TYPE_CHECKING:
    from ssld.mining.dedup import Neighbours

PARALLEL_MIN = 64  # tasks from which forked workers pay off


@dataclass
class Match:
    """A pool row judged a copy of a reference row, by which method, with its score and margin (an alignment's
    margin is its distance ratio to the next reference; ``peak`` its peak ratio, 100 for other methods; the
    colour rule's score is the thumbnail similarity, its margin the ratio of colour differences)."""

    pool: int
    ref: int
    method: str
    score: float
    margin: float
    peak: float = 100.0


def sift_verdicts(nb: Neighbours, th: Thresholds, pool_files: Sequence[str], ref_files: Sequence[str],
                  progress: bool = False, workers: int = 1,
                  skip: np.ndarray | None = None) -> tuple[list[Match], np.ndarray]:
    """SIFT on the large candidates (hash, thumbnail or embedding close enough; not ``skip``): ``(best verdict
    per judged pool image as a Match scored by its inliers, mask of the pool images SIFT could judge)``."""
    d1, s1 = nb.hash_dist[:, 0], nb.emb_sim[:, 0]
    large_pool = nb.pool_size.min(axis=1) >= th.sift_min_size
    large_ref = nb.ref_size.min(axis=1) >= th.sift_min_size
    with np.errstate(invalid="ignore"):
        cand = nb.pool_ok & large_pool & ((d1 <= th.sift_cand_hash) | (s1 >= th.sift_cand_sim)
                                          | (nb.desc_sim[:, 0] >= th.thumb_cand))
    if skip is not None:
        cand &= ~skip
    return _sift_pass(nb, np.flatnonzero(cand), pool_files, ref_files, large_ref, progress, workers)


def _sift_pass(nb: Neighbours, rows: np.ndarray, pool_files: Sequence[str], ref_files: Sequence[str],
               large_ref: np.ndarray, progress: bool, workers: int = 1) -> tuple[list[Match], np.ndarray]:
    """Verify each large candidate against its hash, thumbnail and embedding best matches. With ``workers > 1``
    the candidates are split over forked processes (grouped by reference, so each process's descriptor cache
    sees the same references again)."""
    tasks = []
    for i in rows:
        refs = list(dict.fromkeys(int(r) for r in (nb.hash_ref[i, 0], nb.desc_ref[i, 0], nb.emb_ref[i, 0])
                                  if r >= 0 and large_ref[r]))
        if refs:
            tasks.append((int(i), refs))
    if workers > 1 and len(tasks) >= PARALLEL_MIN:
        tasks.sort(key=lambda t: t[1][0])
        with forked_pool(workers) as pool:
            parts = pool.starmap(_verify, [(c, pool_files, ref_files, False) for c in _blocks(tasks, workers)])
        results = [r for part in parts for r in part]
    else:
        results = _verify(tasks, pool_files, ref_files, progress)
    tried = np.zeros(len(nb.pool_ok), bool)
    out = []
    for i, r, inliers, matches in results:
        tried[i] = True
        out.append(Match(i, r, "sift", float(inliers), float(inliers / max(matches, 1))))
    return sorted(out, key=lambda m: m.pool), tried


def _verify(tasks: list[tuple[int, list[int]]], pool_files: Sequence[str], ref_files: Sequence[str],
            progress: bool) -> list[tuple[int, int, int, int]]:
    """``(pool row, best reference, inliers, ratio-test matches)`` of each task SIFT could judge."""
    import cv2
    from tqdm import tqdm

    cv2.setNumThreads(1)
    verifier = SiftVerifier()
    out = []
    for i, refs in tqdm(tasks, desc="sift", unit="img", disable=not progress):
        verdicts = verifier.verify_all(pool_files[i], [ref_files[r] for r in refs])
        conclusive = [(v, r) for v, r in zip(verdicts, refs, strict=True) if v.conclusive]
        if conclusive:
            best, r = max(conclusive, key=lambda t: t[0].inliers)
            out.append((i, r, best.inliers, best.matches))
    return out


def _blocks(tasks: list, workers: int) -> list[list]:
    """``tasks`` in ``workers`` consecutive blocks of near-equal length (sorted by reference, each process's
    reference cache then sees the same references again)."""
    return [tasks[j * len(tasks) // workers:(j + 1) * len(tasks) // workers] for j in range(workers)]


_SHARED: dict = {}  # what forked verification workers read (inherited, not pickled per task)


def align_verdicts(nb: Neighbours, th: Thresholds, workers: int = 1, pool_files: Sequence[str] | None = None,
                   ref_files: Sequence[str] | None = None) -> list[Match]:
    """Aligned NCC (:class:`ssld.mining.align.Aligner`) of each pool image of :func:`align_tasks` against its
    candidates: the best reference per pool image as a Match (score = NCC, margin = the
    distance ratio ``(1 - next reference's NCC) / (1 - NCC)``, peak = the peak ratio ``(1 - NCC at positions
    more than 3 px away) / (1 - NCC)``, each at most 100: the match must stand out from every other reference,
    and from every shifted position). With the file lists, a verdict whose NCC reaches ``align_hires_gate``
    but whose ratios fall short is redone on the files at 128 px against its two best references. Empty
    without the grayscale squares."""
    if nb.pool_sq is None or nb.ref_sq is None:
        return []
    files = (pool_files, ref_files) if pool_files and ref_files else None
    tasks = sorted(align_tasks(nb, th), key=lambda t: t[1][0])  # in blocks by nearest reference: warm caches
    return _fan_out(_align, tasks, workers, contiguous=True, nb=nb, th=th, files=files)


def _fan_out(work: Callable[[list], list[Match]], tasks: list, workers: int, contiguous: bool = False,
             **shared) -> list[Match]:
    """``work(tasks)``, split over ``workers`` forked processes when there are enough tasks (they read ``shared``
    from ``_SHARED``: inherited, not pickled per task), round-robin or, with ``contiguous``, in consecutive
    blocks (tasks sorted by reference then keep each process's reference cache warm); the Matches sorted by
    pool row."""
    _SHARED.update(shared)
    try:
        if workers > 1 and len(tasks) >= PARALLEL_MIN:
            chunks = _blocks(tasks, workers) if contiguous else [tasks[j::workers] for j in range(workers)]
            with forked_pool(workers) as pool:
                parts = pool.map(work, chunks)
            out = [m for part in parts for m in part]
        else:
            with single_threaded_blas():  # small matrices: BLAS threads only cost (forking.py)
                out = work(tasks)
    finally:
        _SHARED.clear()
    return sorted(out, key=lambda m: m.pool)


def align_tasks(nb: Neighbours, th: Thresholds) -> list[tuple[int, list[int]]]:
    """``(pool row, candidate references)`` of every pool image the alignment looks at: its shortlist is close
    enough (thumbnail similarity >= ``align_cand``, or a SIFT gate); the candidates are its ``align_k``
    thumbnail neighbours and the hash's and embedding's best two. Small images only when ``align_small_min``
    can be met."""
    with np.errstate(invalid="ignore"):
        cand = nb.pool_ok & ((nb.desc_sim[:, 0] >= th.align_cand) | (nb.hash_dist[:, 0] <= th.sift_cand_hash)
                             | (nb.emb_sim[:, 0] >= th.sift_cand_sim))
    usable = nb.ref_ok.copy()
    if th.align_small_min > 1:  # small pairs can never pass: align neither small pool images nor small references
        cand &= nb.pool_size.min(axis=1) >= th.sift_min_size
        usable &= nb.ref_size.min(axis=1) >= th.sift_min_size
    tasks = []
    for i in np.flatnonzero(cand):
        refs = [int(r) for r in (*nb.desc_ref[i, : th.align_k], *nb.hash_ref[i, :2], *nb.emb_ref[i, :2])
                if r >= 0 and usable[r]]
        if refs:
            tasks.append((int(i), list(dict.fromkeys(refs))))
    return tasks


def _align(tasks: list[tuple[int, list[int]]]) -> list[Match]:
    import cv2

    from ssld.mining.align import Aligner, load_gray

    cv2.setNumThreads(1)
    nb, th, files, aligner, out = _SHARED["nb"], _SHARED["th"], _SHARED["files"], Aligner(), []
    for i, refs in tasks:
        cells: list = []
        peaks = np.full(len(refs), 100.0)
        s = aligner.scores(nb.pool_sq[i], nb.pool_size[i], [(nb.ref_sq[r], nb.ref_size[r]) for r in refs],
                           cells=cells, peaks=peaks, keys=refs)
        best = int(np.argmax(s))
        if s[best] <= -1:
            continue
        score, ratio = _ratio(s, best)
        peak = float(peaks[best])
        if files and th.align_hires_gate <= score and (ratio < th.align_ratio or peak < th.align_peak):
            top = [int(j) for j in np.argsort(-s)[:2]]
            pool_img = load_gray(files[0][i], aligner.grid.hires)
            if pool_img is not None:
                hr_peaks = np.full(len(top), 100.0)
                side, ref_files = aligner.grid.hires, files[1]
                hr = aligner.hires(pool_img, [partial(load_gray, ref_files[refs[j]], side) for j in top],
                                   [cells[j] for j in top], peaks=hr_peaks, keys=[refs[j] for j in top])
                b = int(np.argmax(hr))
                best = top[b]
                score, ratio = _ratio(hr, b)
                peak = float(hr_peaks[b])
        out.append(Match(i, refs[best], "align", score, ratio, peak))
    return out


def _ratio(s: np.ndarray, best: int) -> tuple[float, float]:
    """Best NCC and its distance ratio to the next reference, ``(1 - next) / (1 - best)`` (at most 100)."""
    second = max(float(np.max(np.delete(s, best), initial=0.0)), 0.0)
    return float(s[best]), min((1.0 - second) / max(1.0 - float(s[best]), 1e-6), 100.0)


def noise_verdicts(nb: Neighbours, th: Thresholds, pool_files: Sequence[str], ref_files: Sequence[str],
                   workers: int = 1, skip: set[int] | frozenset[int] = frozenset()) -> list[Match]:
    """Grain correlation (:class:`ssld.mining.noise.NoiseVerifier`) of each large pool image the alignment looks
    at (:func:`align_tasks`; not ``skip``) with its candidates: the best reference per pool image as a Match
    (score = NCC, margin = how many times the next candidate's NCC it is, that one counted as at least
    ``noise.FLOOR``)."""
    large = nb.pool_size.min(axis=1) >= th.sift_min_size
    tasks = [(i, refs) for i, refs in align_tasks(nb, th) if large[i] and i not in skip]
    tasks.sort(key=lambda t: t[1][0])  # by nearest reference, in consecutive blocks: each reference cache stays warm
    return _fan_out(_grain, tasks, workers, contiguous=True, files=(pool_files, ref_files))


def _grain(tasks: list[tuple[int, list[int]]]) -> list[Match]:
    import cv2

    from ssld.mining.noise import FLOOR, NoiseVerifier

    cv2.setNumThreads(1)
    (pool_files, ref_files), verifier, out = _SHARED["files"], NoiseVerifier(), []
    for i, refs in tasks:
        s = verifier.scores(pool_files[i], [ref_files[r] for r in refs])
        best = int(np.argmax(s))
        if s[best] <= -1:
            continue
        second = max(float(np.max(np.delete(s, best), initial=0.0)), FLOOR)
        out.append(Match(i, refs[best], "noise", float(s[best]), float(s[best]) / second))
    return out
