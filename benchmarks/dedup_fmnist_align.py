"""Fashion-MNIST (28 px) without a teacher: the aligned-NCC check (``ssld.mining.align``) on the thumbnail/hash
shortlist, its recall/removed curve.

The same planted copies as ``benchmarks/dedup_bench.py`` (500 test images edited - crop up to 10 %, flip,
brightness, rotation up to 10 deg, resize to 20-40 px, JPEG q50-90 - each with probability 1/2), planted among
the first ``--train`` Fashion-MNIST train images (the pool); the 10k test images are the references. Every
decision depends on one pool image and all references, so the share of other pool images removed is measured
on ``--train`` of them (default 20,000, to keep the run short) and holds for the full 60,000. Reported: the
hash rule alone, then the aligned NCC (``align_small_min`` x ``align_ratio``) on top of it; recall of the copies
matched to their true source, share of the other pool images removed (and how many of those are pixel-identical
to a test image: true duplicates in the dataset), recall by edit at each point, time.

Run: ``OMP_NUM_THREADS=2 python benchmarks/dedup_fmnist_align.py [--out bench_out/mining] [--train 20000]``;
``--train 60000 --defaults`` times ``ssld dedup``'s defaults (no teacher) on the full 60.5k x 10k instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from dedup_bench import idx, write_data

from ssld.mining.dedup import align_verdicts, decide, search
from ssld.mining.rules import Thresholds


def evaluate(matches: list, planted: list[dict], n: int, exact: set[int]) -> dict:
    found = {m.pool: m.ref for m in matches}
    hits = [found.get(n + j) == p["source"] for j, p in enumerate(planted)]
    others = [i for i in found if i < n]
    by_edit: dict[str, list[bool]] = {}
    for p, h in zip(planted, hits, strict=True):
        geo = "crop" in p["edits"] or "rotate" in p["edits"]
        by_edit.setdefault("with crop or rotation" if geo else "photometric/resize/flip only", []).append(h)
        for e in p["edits"]:
            by_edit.setdefault(f"has {e}", []).append(h)
    return {"recall": float(np.mean(hits)), "others_removed": len(others) / n, "others_removed_n": len(others),
            "others_pixel_identical": sum(i in exact for i in others),
            "by_edit": {k: [round(float(np.mean(v)), 3), len(v)] for k, v in sorted(by_edit.items())}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench_out/mining")
    ap.add_argument("--train", type=int, default=20000, help="pool: the first N train images (+ the planted copies)")
    ap.add_argument("--plant", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--defaults", action="store_true",
                    help="only time `ssld dedup`'s defaults (no teacher) on this pool: search, alignment, decision")
    args = ap.parse_args()
    out = Path(args.out)
    (xtr, _), (xte, _) = idx("train"), idx("t10k")
    n = min(args.train, len(xtr))
    # the same planted copies as dedup_bench.py (they depend on the test set and the seed only)
    root = out / ("fmnist" if n == len(xtr) else f"fmnist_train{n}")
    root.mkdir(parents=True, exist_ok=True)
    planted = write_data(root, xtr[:n], xte, args.plant, seed=0)
    test_keys = {hashlib.sha1(a.tobytes()).hexdigest() for a in xte}
    exact = {i for i in range(n) if hashlib.sha1(xtr[i].tobytes()).hexdigest() in test_keys}
    pool = [str(root / f"train/{i:05d}.png") for i in range(n)] + [str(root / p["path"]) for p in planted]
    ref = [str(root / f"test/{i:05d}.png") for i in range(len(xte))]
    if args.defaults:
        return time_defaults(pool, ref, planted, n, exact, args.workers, out)
    t0 = time.perf_counter()
    nb = search(pool, ref, None, None, k=5, workers=args.workers, thumb_knn=True)
    t1 = time.perf_counter()
    # align every pool image (small images: thumbnail >= -1); align_small_min <= 1 so that small ones are aligned
    th = replace(Thresholds(), align_cand=-1.0, align_small_min=0.90)
    align = align_verdicts(nb, th, workers=args.workers)
    t2 = time.perf_counter()
    src = np.array([p["source"] for p in planted])
    best = {m.pool: m.ref for m in align}
    reach = {"thumb_top1": float(np.mean(nb.desc_ref[n:, 0] == src)),
             "thumb_top5": float(np.mean((nb.desc_ref[n:] == src[:, None]).any(1))),
             "aligned_best_is_source": float(np.mean([best.get(n + j) == s for j, s in enumerate(src)]))}
    print(f"{n} pool + {len(planted)} planted x {len(ref)} refs; search {t1 - t0:.0f} s {nb.seconds}, "
          f"align {t2 - t1:.0f} s ({len(align)} pool images, {args.workers} processes); {reach}", flush=True)
    hash_only = evaluate(decide(nb, Thresholds(), align=[]), planted, n, exact)
    print(f"hash rule alone: recall {hash_only['recall']:.3f}, others removed "
          f"{100 * hash_only['others_removed']:.3f}%", flush=True)
    rows = []
    for a_min in (0.90, 0.93, 0.95, 0.97, 0.98, 0.99):
        for ratio in (1.5, 2.0, 3.0, 4.0, 6.0, 10.0):
            t = replace(th, align_small_min=a_min, align_ratio=ratio)
            e = evaluate(decide(nb, t, align=align), planted, n, exact)
            rows.append({"align_small_min": a_min, "align_ratio": ratio, **e})
            print(f"align_small_min {a_min:.2f} ratio {ratio:4.1f}: recall {e['recall']:.3f}, others removed "
                  f"{100 * e['others_removed']:.3f}% ({e['others_removed_n']}, {e['others_pixel_identical']} "
                  f"pixel-identical)", flush=True)
    (out / "dedup_fmnist_align.json").write_text(json.dumps(
        {"pool": n, "planted": len(planted), "ref": len(ref), "seconds": {**nb.seconds, "search": t1 - t0,
                                                                          "align": t2 - t1},
         "aligned": len(align), **reach, "hash_only": hash_only, "curve": rows}, indent=2))


def time_defaults(pool: list[str], ref: list[str], planted: list[dict], n: int, exact: set[int], workers: int,
                  out: Path) -> None:
    """What ``ssld dedup`` without a teacher costs here at its defaults, phase by phase, and what it finds."""
    import resource

    th = Thresholds()
    t0 = time.perf_counter()
    nb = search(pool, ref, None, None, k=th.k, workers=workers, progress=False)
    t1 = time.perf_counter()
    align = align_verdicts(nb, th, workers=workers, pool_files=pool, ref_files=ref)
    t2 = time.perf_counter()
    e = evaluate(decide(nb, th, pool, ref, workers=workers, align=align), planted, n, exact)
    t3 = time.perf_counter()
    res = {"pool": len(pool), "ref": len(ref), "seconds": {**{k: round(v, 1) for k, v in nb.seconds.items()},
                                                          "search": round(t1 - t0, 1), "align": round(t2 - t1, 1),
                                                          "decide": round(t3 - t2, 1), "total": round(t3 - t0, 1)},
           "aligned": len(align), "recall": e["recall"], "others_removed": e["others_removed"],
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}
    print(json.dumps(res), flush=True)
    (out / "dedup_fmnist_defaults.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
