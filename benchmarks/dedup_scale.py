"""How dedup's time and memory grow with the pool: 10k / 30k / 100k pool images against 10k references, each
stage timed, peak memory measured, a line fitted per stage, extrapolated to ImageNet-22k against ImageNet-1k val
(14M x 50k).

Images: the photo benchmark's crops (``benchmarks/dedup_photos.py`` builds them into ``--photos``), each used
many times with a small jitter (1-6 px shift, brightness x0.97-1.03, JPEG q90) so that every file is distinct.
References come from the benchmark's reference crops, the pool from the other crops, so the pool holds no copy
of a reference and every check the shortlist sends to verification is a look-alike that must be rejected: the
cost of a real pool, where copies are rare. Stages (no teacher): hashing + thumbnails + squares (pool, refs),
kNN (faiss), aligned NCC on the shortlisted pool images, SIFT on the pool images the defaults send to it; SIFT
is timed on a sample of ``--sift-sample`` of them and its total is that rate times their count (it is the slow
stage; the count is exact). Each size runs in a fresh process, so peak RSS is its own.

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


def one(args) -> dict:
    """One size, in this process: every stage timed, peak RSS."""
    from ssld.mining.dedup import align_verdicts, decide, search, sift_verdicts
    from ssld.mining.rules import Thresholds

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
    t0 = time.perf_counter()
    nb = search(pool, ref, None, None, k=th.k, workers=args.workers, progress=False)
    t1 = time.perf_counter()
    align = align_verdicts(nb, th, workers=args.workers)
    t2 = time.perf_counter()
    accepted = {m.pool for m in decide(nb, th, align=align) if m.method == "align"}
    skip = np.zeros(len(pool), bool)
    skip[list(accepted)] = True
    skip[[m.pool for m in align if m.score < th.sift_align_gate]] = True
    # the pool images SIFT would check (sift_verdicts' own gate minus skip), and SIFT on a sample of them
    with np.errstate(invalid="ignore"):
        gate = nb.pool_ok & (nb.pool_size.min(1) >= th.sift_min_size) & (
            (nb.hash_dist[:, 0] <= th.sift_cand_hash) | (nb.desc_sim[:, 0] >= th.thumb_cand)) & ~skip
    rows = np.flatnonzero(gate)
    sample = np.random.default_rng(0).permutation(rows)[: args.sift_sample]
    sample_skip = np.ones(len(pool), bool)
    sample_skip[sample] = False
    t3 = time.perf_counter()
    verdicts, _ = sift_verdicts(nb, th, pool, ref, workers=args.workers, skip=sample_skip | skip)
    t4 = time.perf_counter()
    sift_rate = (t4 - t3) / max(len(sample), 1)
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"pool": args.one, "ref": args.refs, "workers": args.workers,
            "seconds": {"hash_pool_and_refs": nb.seconds["hash"], "knn": nb.seconds["knn"], "align": t2 - t1,
                        "sift_estimated": sift_rate * len(rows),
                        "total_estimated": (t2 - t0) + sift_rate * len(rows)},
            "aligned": len(align), "align_accepted": len(accepted), "sift_images": len(rows),
            "sift_sample": len(sample), "sift_s_per_image_wall": sift_rate,
            "sift_accepted_in_sample": sum(m.score >= th.sift_min_inliers for m in verdicts),
            "peak_rss_mib": self_kb / 1024, "peak_rss_worker_mib": child_kb / 1024,
            "loadavg": os.getloadavg()}


def fit(rows: list[dict]) -> dict:
    """Least-squares line ``a + b * pool`` per stage and for peak RSS."""
    x = np.array([r["pool"] for r in rows], float)
    out = {}
    for key in rows[0]["seconds"]:
        y = np.array([r["seconds"][key] for r in rows])
        b, a = np.polyfit(x, y, 1)
        out[key] = {"a_s": float(a), "b_s_per_image": float(b)}
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
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return
    if not (Path(args.photos) / "crops.json").is_file():
        sys.exit(f"{args.photos}/crops.json missing: run benchmarks/dedup_photos.py --skip-seeds first")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        cmd = [sys.executable, __file__, "--one", str(size), "--photos", args.photos, "--out", args.out,
               "--refs", str(args.refs), "--workers", str(args.workers), "--sift-sample", str(args.sift_sample)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    result = {"rows": rows, "fit": fit(rows) if len(rows) > 1 else None}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "dedup_scale.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result["fit"], indent=2))


if __name__ == "__main__":
    main()
