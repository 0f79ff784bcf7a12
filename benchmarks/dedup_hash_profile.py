"""CPU per image of each part of dedup's single decode-and-describe pass (``ssld.mining.hashing``), one process,
one thread: decode, pHash + dHash, thumbnail descriptor views, colour signature, alignment square. References
are described in 36 views and hashed mirrored too, so they are profiled apart.

Run: ``.venv/bin/python benchmarks/dedup_hash_profile.py [--files bench_out/dedup_scale/files] [--pool 2000]
[--refs 500]`` (the files ``benchmarks/dedup_scale.py`` writes: ``p*.jpg`` pool images, ``r*.jpg`` references).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PARTS = ("decode", "hash", "desc", "colour", "square")


def profile(files: list[Path], reference: bool) -> dict[str, float]:
    """Mean milliseconds of CPU per file for each part."""
    import numpy as np
    from PIL import ImageOps

    from ssld.data import load_image_reduced
    from ssld.mining.align import square
    from ssld.mining.colour import colour_signature
    from ssld.mining.globaldesc import descriptor_views
    from ssld.mining.hashing import DECODE_SIDE, image_hash

    total = dict.fromkeys(PARTS, 0.0)
    for f in files:
        t0 = time.process_time()
        img, _ = load_image_reduced(str(f), DECODE_SIDE)
        gray = img.convert("L")
        t1 = time.process_time()
        image_hash(gray)
        if reference:
            image_hash(ImageOps.mirror(gray))
        t2 = time.process_time()
        descriptor_views(np.asarray(gray), reference=reference)
        t3 = time.process_time()
        colour_signature(np.asarray(img))
        t4 = time.process_time()
        square(np.asarray(gray))
        t5 = time.process_time()
        for part, dt in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            total[part] += dt
    return {part: 1e3 * t / len(files) for part, t in total.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=Path, default=ROOT / "bench_out" / "dedup_scale" / "files")
    ap.add_argument("--pool", type=int, default=2000, help="pool images profiled (evenly spread)")
    ap.add_argument("--refs", type=int, default=500, help="references profiled (evenly spread)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    pool = sorted(args.files.glob("p*.jpg"))
    refs = sorted(args.files.glob("r*.jpg"))
    if not pool or not refs:
        raise SystemExit(f"--files: no p*.jpg and r*.jpg in {args.files} (run benchmarks/dedup_scale.py first)")
    with threadpool_limits(1):
        for label, files, reference in (("pool image", pool, False), ("reference", refs, True)):
            n = min(len(files), args.pool if not reference else args.refs)
            picked = files[:: max(1, len(files) // n)][:n]
            ms = profile(picked, reference)
            parts = ", ".join(f"{k} {v:.2f}" for k, v in ms.items())
            print(f"{label}: {sum(ms.values()):.2f} ms of CPU ({parts}; {n} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
