"""Dedup on whole photographs at their own size (up to 20 megapixels): the photo benchmark's photographs uncut.

Half of the 76 photographs (``benchmarks/dedup_photos.py`` finds them in the installed packages) are references,
the other half is the pool, and one edited copy of each reference (one edit or a pair, the photo benchmark's
edits) is planted in it. Unlike the crops of the photo benchmark, these are photographs as a user's pool holds
them: many megapixels, different sizes. Reported per seed: each stage's time, recall (true source), others
removed. Data written under ``--out``, never committed.

Run: ``OMP_NUM_THREADS=2 python benchmarks/dedup_whole_photos.py [--seeds 0,1,2]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedup_photos import EDITS, edit, evaluate, find_photos

from ssld.mining.dedup import align_verdicts, decide, noise_verdicts, search
from ssld.mining.rules import Thresholds, align_hits


def write_photos(out: Path) -> list[str]:
    """Every photograph as a JPEG q95 at its own size (once)."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for j, (_, src) in enumerate(sorted(find_photos().items())):
        path = out / f"photo{j:03d}.jpg"
        if not path.is_file():
            img = Image.fromarray(src) if isinstance(src, np.ndarray) else Image.open(src)
            img.convert("RGB").save(path, quality=95)
        files.append(str(path))
    return files


def run_seed(files: list[str], seed: int, out: Path, workers: int) -> dict:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    refs = [files[i] for i in order[: len(files) // 2]]
    others = [files[i] for i in order[len(files) // 2 :]]
    planted = []
    for j, ref in enumerate(refs):
        kinds = [str(rng.choice(EDITS))] if j % 2 == 0 else [str(k) for k in rng.choice(EDITS, 2, replace=False)]
        with Image.open(ref) as src:
            img = src.convert("RGB")
        params: dict = {}
        for kind in kinds:
            img, params[kind] = edit(img, kind, rng)
        path = out / f"copy_s{seed}_{j:03d}.jpg"
        img.save(path, quality=params.get("jpeg", {}).get("q", 95))
        planted.append({"path": str(path), "ref": j, "edits": kinds})
    pool = others + [p["path"] for p in planted]
    th, seconds = Thresholds(), {}
    t = time.perf_counter()
    nb = search(pool, refs, None, None, k=th.k, workers=workers, progress=False)
    seconds["search"] = time.perf_counter() - t
    t = time.perf_counter()
    align = align_verdicts(nb, th, workers, pool, refs)
    seconds["align"] = time.perf_counter() - t
    accepted = {m.pool for m in align if align_hits(np.float64(m.score), np.float64(m.margin), False, th,
                                                   np.float64(m.peak))}
    t = time.perf_counter()
    noise = noise_verdicts(nb, th, pool, refs, workers, skip=accepted)
    seconds["grain"] = time.perf_counter() - t
    t = time.perf_counter()
    matches = decide(nb, th, pool, refs, workers=workers, align=align, noise=noise)
    seconds["sift_rest"] = time.perf_counter() - t
    seconds["total"] = sum(seconds.values())
    megapixels = [Image.open(f).size for f in refs + others]
    e = evaluate(matches, planted, len(others))
    return {"seed": seed, "refs": len(refs), "pool": len(pool),
            "megapixels": {"median": float(np.median([w * h / 1e6 for w, h in megapixels])),
                           "max": float(max(w * h / 1e6 for w, h in megapixels))},
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "recall": e["recall"], "others_removed_n": e["others_removed_n"], "wrong_source": e["wrong_source"],
            "copies_by_method": e["copies_by_method"], "recall_by_edit": e["recall_by_edit"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench_out/whole_photos")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    out = Path(args.out)
    files = write_photos(out / "photos")
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        results.append(run_seed(files, seed, out, args.workers))
        print(json.dumps(results[-1]), flush=True)
    (out / "dedup_whole_photos.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
