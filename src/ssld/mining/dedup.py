"""Near-duplicate removal: which pool images are copies of a reference (validation) image.

Shortlist, then decide. ``search`` finds each pool image's nearest references twice, by perceptual hash
(Hamming kNN) and by teacher embedding (cosine kNN), both in faiss, so the cost is near-linear in N + M.
``decide`` then calls a pool image a copy of reference r only when r is its best match *and* clearly better
than the second-best distinct reference (a margin): at low resolution many different items look alike, so
"most similar" alone is not "same photo". Two verifications look at the shortlisted pairs themselves: the
aligned normalised cross-correlation of small grayscale squares (:mod:`ssld.mining.align`, any size, cheap),
the grain of the pair at full resolution (:mod:`ssld.mining.noise`: copies made without resampling keep their
source's pixel noise), and for pairs where both images are at least ``sift_min_size`` px on the short side,
SIFT + ratio test + RANSAC inliers, run only on the pool images neither of the first two accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ssld.mining.embed import as_stored, cosine_knn, embed_files
from ssld.mining.hashing import HASH_BITS, compute_hashes, hamming_knn
from ssld.mining.rules import (
    Thresholds,
    align_hits,
    colour_hits,
    desc_hits,
    hue_kept,
    noise_hits,
    rule_hits,
    smooth_hits,
    thumb_ratio,
)
from ssld.mining.verify import (
    Match,
    align_tasks,
    align_verdicts,
    noise_verdicts,
    sift_verdicts,
)

log = logging.getLogger("ssld.mining")
SIFT_SIDE = 64  # short side (px) from which SIFT can judge an image (Thresholds.sift_min_size's default)


@dataclass
class Neighbours:
    """Each pool image's nearest distinct references by hash distance (bits) and by embedding similarity."""

    hash_dist: np.ndarray
    hash_ref: np.ndarray
    emb_sim: np.ndarray
    emb_ref: np.ndarray
    desc_sim: np.ndarray
    desc_ref: np.ndarray
    pool_size: np.ndarray
    ref_size: np.ndarray
    pool_ok: np.ndarray
    ref_ok: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    pool_sq: np.ndarray | None = None  # grayscale squares for the aligned NCC (ssld.mining.align)
    ref_sq: np.ndarray | None = None
    pool_colour: np.ndarray | None = None  # colour signatures (ssld.mining.colour)
    ref_colour: np.ndarray | None = None


def _subset_knn(knn: Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]], ref: np.ndarray,
                ref_ok: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """kNN over the readable references only, with ids mapped back to reference rows."""
    rows = np.flatnonzero(ref_ok)
    score, idx = knn(ref[rows], query, k)
    return score, np.where(idx >= 0, rows[np.maximum(idx, 0)], -1)


def search(pool_files: Sequence[str], ref_files: Sequence[str], model: nn.Module | None, transform, *,
           k: int = 5, batch_size: int = 128, workers: int = 2, device: str | torch.device = "cpu",
           amp_dtype: torch.dtype | None = None, progress: bool = True,
           pool_embed: tuple[np.ndarray, np.ndarray] | None = None, thumb_knn: bool | None = None,
           sift_side: int = SIFT_SIDE) -> Neighbours:
    """Hash and embed both lists (references also mirrored), then kNN each pool image among the references.

    ``pool_embed = (embeddings [n, 1, d], have [n])`` supplies pool embeddings already computed (read from a
    labeled store: :func:`ssld.mining.embed.store_embeddings`); only the rows it lacks go through the teacher.
    Pool embeddings are rounded to float16 either way (the store's precision), so both paths decide alike.
    ``model=None`` skips the teacher: hashes and the weight-free global descriptor only. The descriptor's kNN
    runs when ``thumb_knn``; by default only when some pool image and some reference are at least
    ``sift_side`` px on the short side (where it shortlists for SIFT; small images need it only for the
    thumbnail rule, which is off by default).
    """
    import time

    t0 = time.perf_counter()
    hash_args = {"workers": workers, "progress": progress, "thumbs": thumb_knn, "thumb_side": sift_side}
    ref_h = compute_hashes(ref_files, mirrored=True, desc="hash ref", **hash_args)
    pool_h = compute_hashes(pool_files, desc="hash pool", **hash_args)
    t1 = time.perf_counter()
    if thumb_knn is None:
        thumb_knn = bool((pool_h.sizes.min(1) >= sift_side).any() and (ref_h.sizes.min(1) >= sift_side).any())
    if model is None:
        return _without_teacher(ref_h, pool_h, k, t0, t1, thumb_knn)
    common = {"batch_size": batch_size, "workers": workers, "device": device, "amp_dtype": amp_dtype,
              "progress": progress}
    ref_e, ref_eok = embed_files(model, ref_files, transform, mirrored=True, desc="embed ref", **common)
    if pool_embed is None:
        pool_e, pool_eok = embed_files(model, pool_files, transform, desc="embed pool", **common)
    else:
        pool_e, pool_eok = pool_embed[0].copy(), pool_embed[1].copy()
        rest = np.flatnonzero(~pool_eok)
        if len(rest):
            e, ok = embed_files(model, [pool_files[i] for i in rest], transform, desc="embed pool rest", **common)
            if e.shape[-1] == pool_e.shape[-1]:
                pool_e[rest], pool_eok[rest] = e, ok
    pool_e = as_stored(pool_e)
    t2 = time.perf_counter()
    ref_ok, pool_ok = ref_h.ok & ref_eok, pool_h.ok & pool_eok
    hd, hr = _subset_knn(hamming_knn, ref_h.codes, ref_ok, pool_h.codes[:, 0], k)
    es, er = _subset_knn(cosine_knn, ref_e, ref_ok, pool_e[:, 0], k)
    gs, gr = _thumb_knn(ref_h, pool_h, ref_ok, k, thumb_knn)
    t3 = time.perf_counter()
    return Neighbours(hd, hr, es, er, gs, gr, pool_h.sizes, ref_h.sizes, pool_ok, ref_ok,
                      {"hash": t1 - t0, "embed": t2 - t1, "knn": t3 - t2}, pool_h.square, ref_h.square,
                      pool_h.colour, ref_h.colour)


def _thumb_knn(ref_h, pool_h, ref_ok: np.ndarray, k: int, run: bool) -> tuple[np.ndarray, np.ndarray]:
    """Thumbnail-descriptor kNN (best view per reference), or empty columns when not wanted. A pool image without
    a descriptor (too small, or flat at 12 px) gets empty columns too: its cosine is 0 with every reference, and
    the references the kNN would return in that tie are arbitrary ones the alignment would check for nothing."""
    n = len(pool_h.ok)
    score, idx = np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
    if run:
        have = pool_h.desc.any(axis=(1, 2))
        if have.any():
            score[have], idx[have] = _subset_knn(cosine_knn, ref_h.desc, ref_ok, pool_h.desc[have], k)
    return score, idx


def _without_teacher(ref_h, pool_h, k: int, t0: float, t1: float, thumb_knn: bool) -> Neighbours:
    """Neighbours by hash and global descriptor only (the embedding columns are empty)."""
    import time

    ref_ok, pool_ok = ref_h.ok, pool_h.ok
    hd, hr = _subset_knn(hamming_knn, ref_h.codes, ref_ok, pool_h.codes[:, 0], k)
    gs, gr = _thumb_knn(ref_h, pool_h, ref_ok, k, thumb_knn)
    es, er = np.full(gs.shape, -np.inf, np.float32), np.full(gr.shape, -1, np.int64)
    t2 = time.perf_counter()
    return Neighbours(hd, hr, es, er, gs, gr, pool_h.sizes, ref_h.sizes, pool_ok, ref_ok,
                      {"hash": t1 - t0, "embed": 0.0, "knn": t2 - t1}, pool_h.square, ref_h.square,
                      pool_h.colour, ref_h.colour)


def decide(nb: Neighbours, th: Thresholds, pool_files: Sequence[str] | None = None,
           ref_files: Sequence[str] | None = None, progress: bool = False, workers: int = 1,
           sift: tuple[list[Match], np.ndarray] | None = None,
           align: list[Match] | None = None, noise: list[Match] | None = None) -> list[Match]:
    """Apply the rules, first that fires wins: SIFT for large pairs (needs the file lists; ``workers``
    processes), the aligned NCC, the grain (large images, with the file lists), the thumbnail for large images
    too smooth to align, the thumbnail and the colour together, then hash, thumbnail and embedding margins where
    SIFT could not judge. A match whose hues disagree is dropped, unless SIFT made it.
    ``sift`` (from :func:`sift_verdicts`), ``align`` (from :func:`align_verdicts`) and ``noise`` (from
    :func:`noise_verdicts`) reuse verdicts computed once, e.g. to sweep thresholds. The grain is compared only
    where the alignment did not accept, SIFT only where neither did."""
    if align is None:
        align = align_verdicts(nb, th, workers, pool_files, ref_files)
    small = lambda m: min(*nb.pool_size[m.pool], *nb.ref_size[m.ref]) < th.sift_min_size
    aligned = [m for m in align if align_hits(np.float64(m.score), np.float64(m.margin), small(m), th,
                                              np.float64(m.peak))]
    if noise is None:  # not computed where the rule cannot fire (noise_min above 1: off)
        run = pool_files is not None and ref_files is not None and th.noise_min <= 1
        noise = noise_verdicts(nb, th, pool_files, ref_files, workers, skip={m.pool for m in aligned}) if run else []
    grained = [m for m in noise if noise_hits(m, th)]
    hash_hit, emb_hit = rule_hits(nb, th)
    d1, d2 = nb.hash_dist[:, 0], nb.hash_dist[:, 1]
    s1, s2 = nb.emb_sim[:, 0], nb.emb_sim[:, 1]
    large_pool = nb.pool_size.min(axis=1) >= th.sift_min_size
    large_ref = nb.ref_size.min(axis=1) >= th.sift_min_size
    if sift is None and pool_files is not None and ref_files is not None:
        skip = np.zeros(len(d1), bool)  # accepted by the alignment, or too far from any reference for SIFT
        skip[[m.pool for m in align if m.score < th.sift_align_gate]] = True
        skip[[m.pool for m in aligned + grained]] = True
        sift = sift_verdicts(nb, th, pool_files, ref_files, progress, workers, skip=skip)
    # SIFT judged these (a copy or not): the hash, thumbnail and embedding rules do not apply to them
    verdicts, sift_tried = sift if sift is not None else ([], np.zeros(len(d1), bool))
    matches = [m for m in verdicts if m.score >= th.sift_min_inliers]
    taken = {m.pool for m in matches}
    for m in aligned + grained:
        if m.pool not in taken:
            matches.append(m)
            taken.add(m.pool)
    # a large image SIFT could not judge (too few keypoints) is left to the hash and the thumbnail: a teacher
    # embedding says "same kind of thing", which is evidence of a copy only where images are too small for
    # anything better
    emb_hit &= ~(large_pool & large_ref[np.maximum(nb.emb_ref[:, 0], 0)])
    desc_hit = desc_hits(nb, th)
    g1, g2 = nb.desc_sim[:, 0], nb.desc_sim[:, 1]
    # a large image the alignment could not judge (flat once high-passed: smooth gradients, blur) is judged by
    # its thumbnail, gradients and all, against a stricter bar
    no_detail = np.zeros(len(d1), bool)
    if nb.pool_sq is not None:
        no_detail[[i for i, _ in align_tasks(nb, th)]] = True
        no_detail[[m.pool for m in align]] = False
    smooth_hit, ratio = no_detail & large_pool & smooth_hits(nb, th), thumb_ratio(nb)
    for i in np.flatnonzero(smooth_hit):
        if int(i) not in taken:
            matches.append(Match(int(i), int(nb.desc_ref[i, 0]), "smooth", float(g1[i]), float(ratio[i])))
            taken.add(int(i))
    # the same thumbnail layout and the same colour at the centre, where every other candidate's colour differs
    # more: a copy of a crop with little detail (sky, water), told from other crops of the same sky
    colour_hit, _, de_ratio = colour_hits(nb, th)
    for i in np.flatnonzero(colour_hit & large_pool):
        if int(i) not in taken:
            matches.append(Match(int(i), int(nb.desc_ref[i, 0]), "colour", float(g1[i]), float(de_ratio[i])))
            taken.add(int(i))
    for i in np.flatnonzero((hash_hit | desc_hit | emb_hit) & ~sift_tried):
        if int(i) in taken:
            continue
        if hash_hit[i]:
            margin = float((d2[i] - d1[i]) / HASH_BITS) if np.isfinite(d2[i]) else 1.0
            matches.append(Match(int(i), int(nb.hash_ref[i, 0]), "phash", float(1 - d1[i] / HASH_BITS), margin))
        elif desc_hit[i]:
            margin = float(g1[i] - g2[i]) if np.isfinite(g2[i]) else 1.0
            matches.append(Match(int(i), int(nb.desc_ref[i, 0]), "thumb", float(g1[i]), margin))
        else:
            margin = float(s1[i] - s2[i]) if np.isfinite(s2[i]) else 1.0
            matches.append(Match(int(i), int(nb.emb_ref[i, 0]), "embedding", float(s1[i]), margin))
    return sorted(hue_kept(nb, matches, th), key=lambda m: m.pool)


def dedup_transform(cfg, split) -> Callable:
    """The teacher's preprocessing exactly as ``ssld label`` builds it (so stored pool embeddings and the
    references' match): without a fixed-size crop/resize, images are fitted to ``Global.image_shape``
    (pool and reference images may come in any size, and one batch needs one size)."""
    from ssld.data import build_transform

    return build_transform(split.dataset.transform_ops, fit_size=cfg.Global.image_shape[1:])
