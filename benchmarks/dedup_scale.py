"""How dedup's time and memory grow with the pool: 10k / 30k / 100k pool images against 10k references, each
stage timed, peak memory measured, a line fitted per stage, extrapolated to ImageNet-22k against ImageNet-1k val
(14M x 50k).

Images: the photo benchmark's crops (``benchmarks/dedup_photos.py`` builds them into ``--photos``), each used
many times with a small jitter (1-6 px shift, brightness x0.97-1.03, JPEG q90) so that every file is distinct.
References come from the benchmark's reference crops, the pool from the other crops, so the pool holds no copy
of a reference and every check the shortlist sends to verification is a look-alike that must be rejected: the
cost of a real pool, where copies are rare. Stages (no teacher): hashing + thumbnails + squares (pool, refs),
kNN (faiss), aligned NCC on the shortlisted pool images (timed on ``--align-sample`` of them, times their exact
count), SIFT on the pool images the defaults send to it (their share measured on the alignment's sample, timed
on ``--sift-sample`` of them). Hashing and kNN are timed in full. Each size runs in a fresh process, so peak RSS
is its own.

Run: ``OMP_NUM_THREADS=2 python benchmarks/dedup_scale.py [--sizes 10000,30000,100000] [--refs 10000]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance


def jittered(crops: list[dict], k: int, out: Path, tag: str, photos: Path, seed: int) -> list[str]:
    """``k`` distinct files, the crops re-used in turn with a small random shift and brightness change."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for j in range(k):
        path = out / f"{tag}{j:06d}.jpg"
        dx, dy, b = int(rng.integers(1, 7)), int(rng.integers(1, 7)), float(rng.uniform(0.97, 1.03))
        if not path.is_file():
            with Image.open(photos / crops[j % len(crops)]["path"]) as src:
                img = src.convert("RGB")
            w, h = img.size
            ImageEnhance.Brightness(img.crop((dx, dy, w, h))).enhance(b).save(path, quality=90)
        files.append(str(path))
    return files


def cpu() -> float:
    """CPU seconds (user + system) of this process and of its finished children (loader and SIFT workers)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def one(args) -> dict:
    """One size, in this process: every stage timed, peak RSS."""
    from ssld.mining.dedup import (
        align_verdicts,
        decide,
        noise_verdicts,
        search,
        sift_verdicts,
    )
    from ssld.mining.rules import Thresholds, noise_hits

    crops = json.loads((Path(args.photos) / "crops.json").read_text())["crops"]
    order = np.random.default_rng(0).permutation(len(crops))
    structured = [crops[i] for i in order if not crops[i].get("flat")]
    n_ref = len(structured) // 3  # the photo benchmark's reference crops; the pool from all the others
    ref_crops = structured[:n_ref]
    pool_crops = structured[n_ref:] + [crops[i] for i in order if crops[i].get("flat")]
    data = Path(args.out) / "files"
    ref = jittered(ref_crops, args.refs, data, "r", Path(args.photos), 1)
    pool = jittered(pool_crops, args.one, data, "p", Path(args.photos), 2)
    th = Thresholds()
    c0, t0 = cpu(), time.perf_counter()
    nb = search(pool, ref, None, None, k=th.k, workers=args.workers, progress=False)
    c1, t1 = cpu(), time.perf_counter()
    # the pool images the alignment looks at (exact count); the alignment itself timed on a sample of them
    with np.errstate(invalid="ignore"):
        cand = nb.pool_ok & ((nb.desc_sim[:, 0] >= th.align_cand) | (nb.hash_dist[:, 0] <= th.sift_cand_hash))
    rows = np.flatnonzero(cand)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.permutation(rows)[: args.align_sample])
    mask = np.zeros(len(pool), bool)
    mask[sample] = True
    c2, t2 = cpu(), time.perf_counter()
    align = align_verdicts(replace(nb, pool_ok=mask), th, args.workers, pool, ref)
    c3, t3 = cpu(), time.perf_counter()
    align_rate = (t3 - t2) / max(len(sample), 1)
    accepted = {m.pool for m in decide(nb, th, align=align) if m.method == "align"}
    # the grain, on the sample's pool images the alignment did not accept (timed per aligned pool image)
    c3g, t3g = cpu(), time.perf_counter()
    noise = noise_verdicts(replace(nb, pool_ok=mask), th, pool, ref, args.workers, skip=accepted)
    c3h, t3h = cpu(), time.perf_counter()
    grain_rate = (t3h - t3g) / max(len(sample), 1)
    accepted |= {m.pool for m in noise if noise_hits(m, th)}
    # SIFT's share of the sample: large, in SIFT's own gate, not accepted, NCC >= sift_align_gate
    scores = {m.pool: m.score for m in align}
    with np.errstate(invalid="ignore"):
        sift_gate = (nb.pool_size.min(1) >= th.sift_min_size) & (
            (nb.hash_dist[:, 0] <= th.sift_cand_hash) | (nb.desc_sim[:, 0] >= th.thumb_cand))
    sift_rows = [int(i) for i in sample if sift_gate[i] and int(i) not in accepted
                 and scores.get(int(i), -1.0) >= th.sift_align_gate]
    sift_share = len(sift_rows) / max(len(sample), 1)
    timed = rng.permutation(sift_rows)[: args.sift_sample]
    skip = np.ones(len(pool), bool)
    skip[timed] = False
    c4, t4 = cpu(), time.perf_counter()
    verdicts, _ = sift_verdicts(nb, th, pool, ref, workers=args.workers, skip=skip)
    c5, t5 = cpu(), time.perf_counter()
    sift_rate = (t5 - t4) / max(len(timed), 1)
    n_sift = sift_share * len(rows)
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"pool": args.one, "ref": args.refs, "workers": args.workers,
            "seconds": {"hash_pool_and_refs": nb.seconds["hash"], "knn": nb.seconds["knn"],
                        "align_estimated": align_rate * len(rows), "grain_estimated": grain_rate * len(rows),
                        "sift_estimated": sift_rate * n_sift,
                        "total_estimated": (t1 - t0) + (align_rate + grain_rate) * len(rows) + sift_rate * n_sift},
            "cpu_seconds": {"search": c1 - c0, "align_estimated": (c3 - c2) / max(len(sample), 1) * len(rows),
                            "grain_estimated": (c3h - c3g) / max(len(sample), 1) * len(rows),
                            "sift_estimated": (c5 - c4) / max(len(timed), 1) * n_sift},
            "align_images": len(rows), "align_sample": len(sample), "align_s_per_image_wall": align_rate,
            "align_accepted_in_sample": len(accepted), "sift_share_of_aligned": sift_share,
            "sift_images_estimated": n_sift, "sift_sample": len(timed), "sift_s_per_image_wall": sift_rate,
            "sift_accepted_in_sample": sum(m.score >= th.sift_min_inliers for m in verdicts),
            "peak_rss_mib": self_kb / 1024, "peak_rss_worker_mib": child_kb / 1024,
            "loadavg": os.getloadavg()}


def knn_probe(n_ref: int, queries: int) -> dict:
    """Seconds per pool image of the two kNN searches with ``n_ref`` references as dedup indexes them (hash:
    as is + mirrored; thumbnail: every reference view), on random vectors of the real shapes; the index is the
    one ``ip_index`` picks for that many references and 14M queries (IVF beyond 2e9 pairs)."""
    from ssld.mining import embed
    from ssld.mining.globaldesc import POOL_VIEWS, REF_VIEWS, SIDE
    from ssld.mining.hashing import hamming_knn

    rng = np.random.default_rng(0)
    views = 2 * len(REF_VIEWS)
    ref = rng.normal(size=(n_ref, views, SIDE * SIDE)).astype(np.float32)
    ref /= np.linalg.norm(ref, axis=-1, keepdims=True)
    q = ref[rng.integers(0, n_ref, queries), :1] + 0.3 * rng.normal(
        size=(queries, len(POOL_VIEWS), SIDE * SIDE)).astype(np.float32)  # every pool image queries each view
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    index = embed.ip_index(SIDE * SIDE, n_ref * views, 14_000_000)
    real = embed.ip_index
    embed.ip_index = lambda d, n, queries=0: real(d, n, 14_000_000)  # the index a 14M-image pool would get
    try:
        t0 = time.perf_counter()
        embed.cosine_knn(ref, q, 5)
        t_desc = time.perf_counter() - t0
    finally:
        embed.ip_index = real
    codes = rng.integers(0, 256, size=(n_ref, 2, 16), dtype=np.uint8)
    t0 = time.perf_counter()
    hamming_knn(codes, rng.integers(0, 256, size=(queries, 16), dtype=np.uint8), 5)
    t_hash = time.perf_counter() - t0
    return {"ref": n_ref, "queries": queries, "thumb_index": type(index).__name__,
            "thumb_s_per_query": t_desc / queries, "hash_s_per_query": t_hash / queries,
            "note": "thumbnail time includes building and training the index once"}


def fit(rows: list[dict]) -> dict:
    """Least-squares line ``a + b * pool`` per stage and for peak RSS."""
    x = np.array([r["pool"] for r in rows], float)
    out = {}
    for group in ("seconds", "cpu_seconds"):
        for key in rows[0][group]:
            b, a = np.polyfit(x, np.array([r[group][key] for r in rows]), 1)
            out[f"{group}/{key}"] = {"a_s": float(a), "b_s_per_image": float(b)}
    b, a = np.polyfit(x, np.array([r["peak_rss_mib"] for r in rows]), 1)
    out["peak_rss"] = {"a_mib": float(a), "b_mib_per_image": float(b)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default="bench_out/photos", help="the photo benchmark's output (its crops)")
    ap.add_argument("--out", default="bench_out/dedup_scale")
    ap.add_argument("--sizes", default="10000,30000,100000")
    ap.add_argument("--refs", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sift-sample", type=int, default=200)
    ap.add_argument("--align-sample", type=int, default=3000)
    ap.add_argument("--knn-refs", type=int, default=50000, help="also time the kNN against this many references")
    ap.add_argument("--knn-queries", type=int, default=20000)
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--knn-only", action="store_true", help="only the kNN probe (--knn-refs x --knn-queries)")
    args = ap.parse_args()
    if args.knn_only:
        print(json.dumps(knn_probe(args.knn_refs, args.knn_queries)))
        return
    if args.one:
        print(json.dumps(one(args)))
        return
    if not (Path(args.photos) / "crops.json").is_file():
        sys.exit(f"{args.photos}/crops.json missing: run benchmarks/dedup_photos.py --skip-seeds first")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        cmd = [sys.executable, __file__, "--one", str(size), "--photos", args.photos, "--out", args.out,
               "--refs", str(args.refs), "--workers", str(args.workers), "--sift-sample", str(args.sift_sample),
               "--align-sample", str(args.align_sample)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    probe = knn_probe(args.knn_refs, args.knn_queries) if args.knn_refs else None
    print(json.dumps(probe), flush=True)
    result = {"rows": rows, "fit": fit(rows) if len(rows) > 1 else None, "knn_probe": probe}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "dedup_scale.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result["fit"], indent=2))


if __name__ == "__main__":
    main()
