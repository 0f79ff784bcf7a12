"""A simulated soft-label store at ImageNet-22k scale: write its shards, merge them, select from it.

No teacher runs: each shard holds random top-k classes (distinct, sorted by a random Dirichlet-like probability,
float16) for ``--images`` images of ``--classes`` classes, written with the store's own ``write_shard``; then
``merge_shards`` streams them into the memory-mapped arrays, ``SoftLabelStore.open`` opens the result and
``select_topk`` (the code behind ``ssld select``) keeps ``--k`` images per class, once as is and once limited to
a kept list (``--keep``, 99.7 % of the rows, as after dedup). Reports seconds, images/s and disk use of each
step, and the peak RSS.

Run: ``python benchmarks/store_scale.py --images 5000000 --classes 1000 --out /tmp/store5m``
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path

import numpy as np

from ssld.data.store import (
    SoftLabelStore,
    merge_shards,
    write_manifest_pending,
    write_shard,
)
from ssld.mining.select import select_topk


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5_000_000)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--shard-size", type=int, default=65536)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--out", default="/tmp/store_scale")
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    n, c, k, s = args.images, args.classes, args.topk, args.shard_size
    manifest = {"teacher": "simulated", "weights_sha256": "0", "transform": [], "source_sha256": "0",
                "num_classes": c, "k": k, "full": False, "embed": False, "dtype": "float16", "source_count": n,
                "shard_size": s}
    write_manifest_pending(out, manifest)
    rng = np.random.default_rng(0)
    n_shards = (n + s - 1) // s
    t_write = 0.0
    for j in range(n_shards):
        rows = np.arange(j * s, min((j + 1) * s, n))
        m = len(rows)
        # k distinct classes per row: a random start plus k distinct offsets, modulo the class count
        idx = ((rng.integers(0, c, (m, 1)) + rng.permutation(c)[:k][None, :]) % c).astype(np.int32)
        prob = np.sort(rng.dirichlet(np.full(k, 0.3), size=m).astype(np.float32), axis=1)[:, ::-1]
        arrays = {"index": rows, "topk_idx": idx, "topk_prob": prob.astype(np.float16),
                  "bad": np.empty(0, np.int64), "missing": np.empty(0, bool)}
        t0 = time.perf_counter()  # the store's work only, not the simulation's
        write_shard(out, j, arrays)
        t_write += time.perf_counter() - t0
    shard_bytes = du(out)
    paths = [f"pool/{i // 1000:05d}/{i:08d}.jpg" for i in range(n)]
    t0 = time.perf_counter()
    merge_shards(out, n_shards, manifest, paths)
    t_merge = time.perf_counter() - t0
    store_bytes = du(out)
    t0 = time.perf_counter()
    store = SoftLabelStore.open(out)
    t_open = time.perf_counter() - t0
    t0 = time.perf_counter()
    sel = select_topk(store, args.k)
    t_select = time.perf_counter() - t0
    keep = np.random.default_rng(1).random(n) >= 0.003
    t0 = time.perf_counter()
    sel_keep = select_topk(store, args.k, only=keep)
    t_select_keep = time.perf_counter() - t0
    res = {"images": n, "classes": c, "topk": k, "shards": n_shards,
           "write_s": t_write, "write_img_s": n / t_write, "shard_bytes": shard_bytes,
           "merge_s": t_merge, "merge_img_s": n / t_merge, "store_bytes": store_bytes,
           "bytes_per_image": store_bytes / n, "open_s": t_open,
           "select_s": t_select, "select_img_s": n / t_select, "selected": len(sel.rows),
           "select_keep_s": t_select_keep, "selected_keep": len(sel_keep.rows),
           "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    print(json.dumps(res, indent=2))
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
