"""Perceptual hashes (imagehash pHash + dHash, 128 bits) and Hamming k-nearest-neighbour search in faiss.

Hashes survive resizing, recompression and mild colour changes; they catch exact and near-exact copies
cheaply. Each reference is indexed twice (as is and mirrored), so a horizontally flipped copy in the pool
lands next to its source too. One pass over the files also records each image's size (the SIFT gate), its
weight-free global descriptor views (:mod:`ssld.mining.globaldesc`), a small grayscale square for the aligned
NCC check (:mod:`ssld.mining.align`) and a colour signature (:mod:`ssld.mining.colour`), so each file is decoded
once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

HASH_BITS = 128
# short side (px) the pass decodes images at, at least: everything it computes is 64 px or less (the square), so a
# large photograph is decoded at 1/2-1/8 scale (JPEG) and box-reduced; its full size is still recorded
DECODE_SIDE = 128


def image_hash(img: Image.Image) -> np.ndarray:
    """pHash (64 bits) followed by dHash (64 bits) of ``img``, packed into 16 bytes."""
    import imagehash

    bits = np.concatenate([imagehash.phash(img).hash.ravel(), imagehash.dhash(img).hash.ravel()])
    return np.packbits(bits)


class _HashDataset(Dataset):
    """``ds[i]`` -> ``(i, hashes [v, 16] (as is, mirrored), (width, height), descriptors [views, d], square,
    colour signature)``, or ``(i, None, None, None, None, None)`` if unreadable."""

    def __init__(self, files: Sequence[str], mirrored: bool, thumbs: bool | None = True, thumb_side: int = 64):
        self.files = list(files)
        self.mirrored = mirrored
        self.thumbs, self.thumb_side = thumbs, thumb_side

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, tuple[int, int] | None, np.ndarray | None,
                                           np.ndarray | None, np.ndarray | None]:
        from ssld.data import load_image_reduced
        from ssld.mining.align import square
        from ssld.mining.colour import colour_signature
        from ssld.mining.globaldesc import descriptor_views

        loaded = load_image_reduced(self.files[i], DECODE_SIDE)
        if loaded is None:
            return i, None, None, None, None, None
        img, size = loaded
        gray = img.convert("L")
        codes = [image_hash(gray)]
        if self.mirrored:
            codes.append(image_hash(ImageOps.mirror(gray)))
        if self.thumbs or (self.thumbs is None and min(size) >= self.thumb_side):
            desc = descriptor_views(np.asarray(gray), reference=self.mirrored)
            colour = colour_signature(np.asarray(img))
        else:  # not needed (a small image, thumbnail rule off): zeros match nothing, grey vetoes nothing
            desc = colour = None
        return i, np.stack(codes), size, desc, square(np.asarray(gray)), colour


def _keep(batch: list[Any]) -> list[Any]:
    return batch


@dataclass
class HashResult:
    """Hashes ``codes [n, v, 16]`` (v = 1, or 2 with mirrored), sizes ``[n, 2]`` (w, h), a readable mask, the
    global descriptors ``desc [n, views, d]`` (a reference's views with mirrored, one view otherwise), the
    grayscale squares ``square [n, s, s]`` uint8 for :mod:`ssld.mining.align` and the colour signatures
    ``colour [n, c]`` (:mod:`ssld.mining.colour`)."""

    codes: np.ndarray
    sizes: np.ndarray
    ok: np.ndarray
    desc: np.ndarray
    square: np.ndarray
    colour: np.ndarray


def compute_hashes(files: Sequence[str], mirrored: bool = False, workers: int = 2, desc: str = "hash",
                   progress: bool = True, thumbs: bool | None = True, thumb_side: int = 64) -> HashResult:
    """Hash every file (in parallel data-loader workers); unreadable files get ``ok == False``. With ``mirrored``
    (references) the mirrored hash and every descriptor view are computed too. Thumbnail descriptors are
    computed for every image with ``thumbs``, for none without, and with ``None`` only for images at least
    ``thumb_side`` px on the short side (those SIFT may verify); colour signatures likewise (zeros otherwise:
    grey, so the hue veto passes them)."""
    from ssld.mining.align import SIDE as SQ
    from ssld.mining.colour import WIDTH
    from ssld.mining.forking import cv2_single_thread
    from ssld.mining.globaldesc import POOL_VIEWS, REF_VIEWS, SIDE

    n, v = len(files), 2 if mirrored else 1
    codes = np.zeros((n, v, HASH_BITS // 8), np.uint8)
    sizes = np.zeros((n, 2), np.int64)
    ok = np.zeros(n, bool)
    descs = np.zeros((n, 2 * len(REF_VIEWS) if mirrored else len(POOL_VIEWS), SIDE * SIDE), np.float32)
    squares = np.zeros((n, SQ, SQ), np.uint8)
    colours = np.zeros((n, WIDTH), np.float32)
    loader = DataLoader(_HashDataset(files, mirrored, thumbs, thumb_side), batch_size=256, num_workers=workers,
                        collate_fn=_keep)
    with cv2_single_thread(), tqdm(total=n, unit="img", desc=desc, disable=not progress, dynamic_ncols=True) as bar:
        for batch in loader:
            for i, c, size, d, sq, col in batch:
                if c is not None:
                    codes[i], sizes[i], ok[i], squares[i] = c, size, True, sq
                    if d is not None:
                        descs[i], colours[i] = d, col
            bar.update(len(batch))
    return HashResult(codes, sizes, ok, descs, squares, colours)


def hamming_knn(ref_codes: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest references of each query by Hamming distance: ``(dist [q, k], ref id [q, k])``.

    ``ref_codes [m, v, 16]`` holds v variants per reference (as is, mirrored); ids are reference rows, and
    each query's list keeps only its best variant per reference (so the 2nd entry is a *different* reference).
    """
    import faiss

    m, v, nbytes = ref_codes.shape
    index = faiss.IndexBinaryFlat(nbytes * 8)
    index.add(np.ascontiguousarray(ref_codes.reshape(m * v, nbytes)))
    dist, idx = index.search(np.ascontiguousarray(query), min(k * v, m * v))
    return best_per_ref(dist.astype(np.float32), np.where(idx >= 0, idx // v, -1), k, larger_is_better=False)


def best_per_ref(score: np.ndarray, ref: np.ndarray, k: int, larger_is_better: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` best *distinct* references (a reference seen through several views keeps its best hit),
    best first; pad with -1 and +-inf. Rows need not be sorted. Memory ``O(rows x hits)``."""
    q = len(ref)
    out_s = np.full((q, k), -np.inf if larger_is_better else np.inf, np.float32)
    out_r = np.full((q, k), -1, np.int64)
    key = np.where(ref >= 0, -score if larger_is_better else score, np.inf)  # smaller is better; misses last
    order = np.argsort(key, axis=1, kind="stable")
    ref_o = np.take_along_axis(ref, order, axis=1)
    # within each reference's hits (a stable sort by id keeps them best first), only the first counts
    by_ref = np.argsort(ref_o, axis=1, kind="stable")
    ref_r = np.take_along_axis(ref_o, by_ref, axis=1)
    first_r = np.ones_like(ref_r, dtype=bool)
    first_r[:, 1:] = ref_r[:, 1:] != ref_r[:, :-1]
    first = np.zeros_like(first_r)
    np.put_along_axis(first, by_ref, first_r, axis=1)
    first &= ref_o >= 0
    slot = np.cumsum(first, axis=1) - 1
    rows, cols = np.nonzero(first & (slot < k))
    src = order[rows, cols]
    out_s[rows, slot[rows, cols]] = score[rows, src]
    out_r[rows, slot[rows, cols]] = ref[rows, src]
    return out_s, out_r
