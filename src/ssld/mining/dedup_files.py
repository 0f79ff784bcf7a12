"""Dedup's files: one rank's part of a sharded run and rank 0's merge, and the outputs a finished run writes
(``kept.txt``, ``removed.csv``, ``pairs.png``, ``dedup_report.json``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ssld.mining.dedup import Match, Neighbours

POOL_FIELDS = ("hash_dist", "hash_ref", "emb_sim", "emb_ref", "desc_sim", "desc_ref", "pool_size", "pool_ok")


def shard_rows(n: int, rank: int, world: int) -> np.ndarray:
    """The pool rows rank ``rank`` of ``world`` handles: one contiguous block each. Every decision depends on
    one pool image and all references only, so sharding the pool gives the unsharded result."""
    return np.arange(rank * n // world, (rank + 1) * n // world)


def save_part(out: Path, rank: int, rows: np.ndarray, nb: Neighbours, matches: list[Match],
              counts: dict[str, int]) -> None:
    """Write one rank's neighbours, matches (pool rows already global) and counts for rank 0 to merge."""
    from ssld.utils.io import atomic_path

    arrays = {f: getattr(nb, f) for f in (*POOL_FIELDS, "ref_size", "ref_ok")}
    arrays["rows"] = rows
    arrays["match_rows"] = np.array([[m.pool, m.ref] for m in matches], np.int64).reshape(-1, 2)
    arrays["match_values"] = np.array([[m.score, m.margin] for m in matches], np.float64).reshape(-1, 2)
    arrays["match_methods"] = np.array([m.method for m in matches], dtype="U16")
    arrays["seconds"] = np.array([list(nb.seconds.values())], np.float64)
    arrays["seconds_keys"] = np.array(list(nb.seconds), dtype="U16")
    arrays["counts"] = np.array([list(counts.values())], np.int64)
    arrays["counts_keys"] = np.array(list(counts), dtype="U32")
    with atomic_path(Path(out) / "parts" / f"rank{rank:04d}.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def merge_parts(out: Path, world: int, n: int) -> tuple[Neighbours, list[Match], dict[str, int]]:
    """Rank 0: the neighbours, matches and summed counts of the whole pool from every rank's part (then the
    parts are deleted)."""
    import shutil

    merged: dict[str, np.ndarray] = {}
    matches: list[Match] = []
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    for r in range(world):
        with np.load(Path(out) / "parts" / f"rank{r:04d}.npz") as z:
            rows = z["rows"]
            for f in POOL_FIELDS:
                part = z[f]
                if f not in merged:
                    merged[f] = np.zeros((n, *part.shape[1:]), part.dtype)
                merged[f][rows] = part
            merged["ref_size"], merged["ref_ok"] = z["ref_size"], z["ref_ok"]
            for (i, j), (score, margin), method in zip(z["match_rows"], z["match_values"], z["match_methods"],
                                                       strict=True):
                matches.append(Match(int(i), int(j), str(method), float(score), float(margin)))
            for key, v in zip(z["seconds_keys"], z["seconds"][0], strict=True):
                seconds[str(key)] = max(seconds.get(str(key), 0.0), float(v))  # ranks run side by side
            for key, v in zip(z["counts_keys"], z["counts"][0], strict=True):
                counts[str(key)] = counts.get(str(key), 0) + int(v)
    shutil.rmtree(Path(out) / "parts", ignore_errors=True)
    return Neighbours(**merged, seconds=seconds), sorted(matches, key=lambda m: m.pool), counts


def write_dedup_outputs(out: str | os.PathLike[str], pool: Sequence, ref: Sequence, root: str, ref_root: str,
                        nb: Neighbours, matches: list[Match], n_pairs: int, extra: dict) -> dict:
    """Write kept.txt, removed.csv, pairs.png and dedup_report.json into ``out``; returns the report."""
    import csv
    import io

    from ssld.data import write_list
    from ssld.mining.plots import pairs_grid
    from ssld.utils.io import atomic_write_text, write_json

    out = Path(out)
    removed = {m.pool for m in matches}
    write_list(out / "kept.txt", [s for i, s in enumerate(pool) if i not in removed], root)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["pool_path", "ref_path", "method", "score", "margin"])
    for m in matches:
        w.writerow([os.path.relpath(pool[m.pool].path, root), os.path.relpath(ref[m.ref].path, ref_root),
                    m.method, f"{m.score:.4f}", f"{m.margin:.4f}"])
    atomic_write_text(out / "removed.csv", buf.getvalue())
    order = {"sift": 0, "align": 1, "noise": 2, "smooth": 3, "colour": 4, "phash": 5, "thumb": 6, "embedding": 7}
    top = sorted(matches, key=lambda m: (order[m.method], -m.score))[:n_pairs]
    pairs_grid([(pool[m.pool].path, ref[m.ref].path, f"{m.method} {m.score:.3g}") for m in top], out / "pairs.png")
    by_method = {k: sum(m.method == k for m in matches) for k in order}
    report = {
        "pool": len(pool), "ref": len(ref), "removed": len(matches), "kept": len(pool) - len(matches),
        "by_method": by_method,
        "skipped_pool": [os.path.relpath(pool[i].path, root) for i in np.flatnonzero(~nb.pool_ok)],
        "skipped_ref": [os.path.relpath(ref[i].path, ref_root) for i in np.flatnonzero(~nb.ref_ok)],
        "seconds": nb.seconds, **extra,
    }
    write_json(out / "dedup_report.json", report)
    return report
