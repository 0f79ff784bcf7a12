"""The approximate faiss indexes dedup switches to at scale (IVF, HNSW) against the exact one, on real descriptors.

``ssld.mining.embed.ip_index`` picks a flat (exact) inner-product index up to ``FLAT_VECTORS`` indexed vectors (or
while queries x indexed vectors stay under ``IVF_PAIRS``), IVF beyond that up to ``FLAT_MAX`` indexed vectors, HNSW
beyond. This script forces each of the
three on the same real data - the photo benchmark's crops (``benchmarks/dedup_photos.py`` builds them): the
references' weight-free thumbnail descriptors (all their views, mirrors included) as the index, every pool crop's 2
views as queries (crops with a descriptor: a flat crop has none and ties with everything) - and reports, against flat: how often the nearest reference agrees, how much of the 5-nearest
list is the same, the index's memory (its serialized size) and the time to build and search.

    OMP_NUM_THREADS=2 python benchmarks/knn_index_recall.py [--photos bench_out/photos]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ssld.mining import embed
from ssld.mining.hashing import compute_hashes


def run(kind: str, ref: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, float, int]:
    """Nearest references by the index ``kind`` (flat / ivf / hnsw), seconds, index bytes."""
    real = embed.ip_index
    sizes: list = []

    def forced(d: int, n: int, queries: int = 0):  # the index ip_index picks at another scale
        flat_vectors, embed.FLAT_VECTORS = embed.FLAT_VECTORS, 0  # IVF whatever the size, for "ivf"
        try:
            index = (real(d, n, 0) if kind == "flat" else real(d, n, embed.IVF_PAIRS) if kind == "ivf"
                     else real(d, embed.FLAT_MAX + 1, 0))
        finally:
            embed.FLAT_VECTORS = flat_vectors
        sizes.append(index)
        return index

    embed.ip_index = forced
    try:
        t = time.perf_counter()
        _, idx = embed.cosine_knn(ref, query, k)
        seconds = time.perf_counter() - t
    finally:
        embed.ip_index = real
    import faiss

    return idx, seconds, len(faiss.serialize_index(sizes[0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default="bench_out/photos", help="the photo benchmark's output (its crops)")
    ap.add_argument("--refs", type=int, default=0, help="references (default: a third of the crops)")
    ap.add_argument("--k", type=int, default=5)
    args = ap.parse_args()
    root = Path(args.photos)
    crops = json.loads((root / "crops.json").read_text())["crops"]
    files = [str(root / c["path"]) for c in crops]
    n_ref = args.refs or len(files) // 3
    order = np.random.default_rng(0).permutation(len(files))
    ref_h = compute_hashes([files[i] for i in order[:n_ref]], mirrored=True, progress=False)
    pool_h = compute_hashes([files[i] for i in order[n_ref:]], progress=False)
    ref = ref_h.desc[ref_h.ok]
    # flat crops (sky, walls) have no descriptor (zeros): every reference ties at 0 for them, so they say nothing
    query = pool_h.desc[pool_h.ok & np.abs(pool_h.desc).sum(axis=(1, 2)).astype(bool)]
    flat, t_flat, b_flat = run("flat", ref, query, args.k)
    rows = {"flat": {"seconds": round(t_flat, 2), "index_mb": round(b_flat / 2**20, 1)}}
    for kind in ("ivf", "hnsw"):
        idx, t, b = run(kind, ref, query, args.k)
        same_top5 = np.mean([len(set(a) & set(f)) / max(len(set(f) - {-1}), 1) for a, f in zip(idx, flat, strict=True)])
        rows[kind] = {"top1_agrees": round(float(np.mean(idx[:, 0] == flat[:, 0])), 4),
                      "top5_overlap": round(float(same_top5), 4), "seconds": round(t, 2),
                      "index_mb": round(b / 2**20, 1)}
    result = {"indexed_vectors": int(ref.shape[0] * ref.shape[1]), "references": int(ref.shape[0]),
              "queries": int(query.shape[0] * query.shape[1]), "dim": int(ref.shape[2]), **rows}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
