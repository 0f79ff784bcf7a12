"""Soft-label store: the teacher's top-k (and optionally full) probabilities for every image of a list.

Layout of a store directory::

    manifest.json      teacher, weights sha256, transform, classes, k, dtype, count, source list sha256,
                       skipped files, shard size, ``complete`` flag (written last, so a killed run never
                       leaves a store that reads as complete)
    topk_idx.npy       int32   [N, k]   class indices, most probable first
    topk_prob.npy      float16 [N, k]   their probabilities
    probs.npy          float16 [N, C]   full probabilities (only with ``--full``)
    embed.npy          float16 [N, D]   the teacher's pooled pre-logits features, L2-normalised (``embed: true``;
                                        dedup reads them, so the pool passes through the teacher once)
    paths.txt          the N labeled paths, one a line (skipped images are not rows)
    shards/00000.npz   work in progress; each shard is written atomically and deleted after the merge

Arrays are opened memory-mapped, so a store of a million images costs no RAM to open.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ssld.errors import UserError
from ssld.utils.io import atomic_path, atomic_write_text, write_json

MANIFEST = "manifest.json"
SHARD_DIR = "shards"
ARRAYS = ("topk_idx", "topk_prob", "probs", "embed")


def shard_path(out: Path, shard: int) -> Path:
    """Path of shard number ``shard`` inside store ``out``."""
    return out / SHARD_DIR / f"{shard:05d}.npz"


def write_shard(out: Path, shard: int, arrays: dict[str, np.ndarray]) -> None:
    """Write one shard atomically: ``index`` (labeled source rows), ``topk_idx``, ``topk_prob``, optional
    ``probs`` and ``embed``, ``bad`` (skipped source rows) and ``missing`` (per bad row: file absent rather than unreadable)."""
    with atomic_path(shard_path(out, shard)) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def completed_shards(out: Path) -> set[int]:
    """Numbers of the shards already on disk (a shard on disk is complete: it was renamed into place)."""
    d = out / SHARD_DIR
    if not d.is_dir():
        return set()
    return {int(p.stem) for p in d.glob("*.npz") if p.stem.isdigit()}


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The store's manifest, or None when there is none yet."""
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg}); delete the store directory and label again") from e


def write_manifest_pending(out: Path, manifest: dict[str, Any]) -> None:
    """Write the run's manifest with ``complete: false`` before any shard, so a rerun can check it is the same run."""
    write_json(out / MANIFEST, dict(manifest, complete=False))


def merge_shards(out: Path, n_shards: int, manifest: dict[str, Any], all_paths: list[str]) -> dict[str, Any]:
    """Merge shards ``0..n_shards-1`` into the final arrays, then write the manifest with ``complete: true``.

    ``all_paths[i]`` is the path of source row ``i``; rows a shard lists as ``bad`` are left out. Arrays are
    streamed into memory-mapped files shard by shard, so the merge needs one shard of RAM, not the store's.
    Returns the final manifest.
    """
    counts, skipped = [], []
    for j in range(n_shards):
        with np.load(shard_path(out, j)) as z:
            counts.append(len(z["index"]))
            skipped.extend(
                {"path": all_paths[int(i)], "reason": "missing" if m else "unreadable"}
                for i, m in zip(z["bad"], z["missing"], strict=True)
            )
    total = int(sum(counts))
    k, c = int(manifest["k"]), int(manifest["num_classes"])
    shapes = {"topk_idx": ((total, k), np.int32), "topk_prob": ((total, k), np.float16)}
    if manifest["full"]:
        shapes["probs"] = ((total, c), np.float16)
    dim = 0
    if manifest.get("embed"):
        dim = _embed_dim(out, n_shards)
        shapes["embed"] = ((total, dim), np.float16)
    rows: list[int] = []
    for name, (shape, dtype) in shapes.items():
        with atomic_path(out / f"{name}.npy") as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            pos = 0
            for j in range(n_shards):
                with np.load(shard_path(out, j)) as z:
                    part = z[name]
                    if len(part):  # an all-skipped shard's embed is (0, 0)
                        arr[pos : pos + len(part)] = part
                    pos += len(part)
                    if name == "topk_idx":
                        rows.extend(int(i) for i in z["index"])
            arr.flush()
            del arr
    atomic_write_text(out / "paths.txt", "".join(f"{all_paths[i]}\n" for i in rows))
    final = dict(manifest, count=total, skipped=skipped, complete=True)
    if manifest.get("embed"):
        final["embed_dim"] = dim
    write_json(out / MANIFEST, final)
    shutil.rmtree(out / SHARD_DIR, ignore_errors=True)
    return final


def _embed_dim(out: Path, n_shards: int) -> int:
    """Width of the stored embeddings: that of the first shard with a labeled row (0 when none has one)."""
    for j in range(n_shards):
        with np.load(shard_path(out, j)) as z:
            if len(z["embed"]):
                return int(z["embed"].shape[1])
    return 0


class SoftLabelStore:
    """Read-only view of a complete store: by row (``store[i]``) and by path (``store.index_of(path)``)."""

    def __init__(self, root: Path, manifest: dict[str, Any], paths: list[str], arrays: dict[str, np.ndarray]):
        self.root = root
        self.manifest = manifest
        self.paths = paths
        self.topk_idx: np.ndarray = arrays["topk_idx"]
        self.topk_prob: np.ndarray = arrays["topk_prob"]
        self.probs: np.ndarray | None = arrays.get("probs")
        self.embed: np.ndarray | None = arrays.get("embed")
        self._row: dict[str, int] | None = None

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> SoftLabelStore:
        """Open a store; ``UserError`` if it is incomplete or its manifest and arrays disagree."""
        root = Path(directory)
        manifest = read_manifest(root)
        if manifest is None:
            raise UserError(f"{root}: not a soft-label store (no {MANIFEST}); run `ssld label` first")
        if not manifest.get("complete"):
            raise UserError(f"{root}: soft-label store is incomplete (labeling was interrupted); rerun `ssld label`")
        n, k, c = int(manifest["count"]), int(manifest["k"]), int(manifest["num_classes"])
        expected = {"topk_idx": (n, k), "topk_prob": (n, k)}
        if manifest.get("full"):
            expected["probs"] = (n, c)
        if manifest.get("embed"):
            expected["embed"] = (n, int(manifest.get("embed_dim", 0)))
        arrays: dict[str, np.ndarray] = {}
        for name, shape in expected.items():
            path = root / f"{name}.npy"
            if not path.is_file():
                raise UserError(f"{path}: missing, but {root / MANIFEST} lists it; the store is damaged")
            try:
                arr = np.load(path, mmap_mode="r")
            except ValueError as e:
                raise UserError(f"{path}: unreadable array ({e})") from e
            if arr.shape != shape:
                raise UserError(f"{path}: shape {arr.shape} does not match the manifest's {shape} "
                                "(count, k, classes, embed_dim)")
            arrays[name] = arr
        paths_file = root / "paths.txt"
        paths = paths_file.read_text().splitlines() if paths_file.is_file() else []
        if len(paths) != n:
            raise UserError(f"{paths_file}: {len(paths)} paths but the manifest's count is {n}")
        return cls(root, manifest, paths, arrays)

    @property
    def num_classes(self) -> int:
        return int(self.manifest["num_classes"])

    @property
    def k(self) -> int:
        return int(self.manifest["k"])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(topk_idx, topk_prob)`` of row ``i``."""
        return np.asarray(self.topk_idx[i]), np.asarray(self.topk_prob[i])

    def index_of(self, path: str) -> int:
        """Row of ``path`` (as written in paths.txt, or normalised the same way); ``KeyError`` if absent."""
        return self._table()[os.path.normpath(path)]

    def _table(self) -> dict[str, int]:
        if self._row is None:
            self._row = {os.path.normpath(p): i for i, p in enumerate(self.paths)}
        return self._row

    def rows_of(self, paths: list[str]) -> np.ndarray:
        """Row of each path (as in paths.txt, or normalised the same way), -1 where the store has none."""
        table = self._table()
        return np.array([table.get(os.path.normpath(p), -1) for p in paths], dtype=np.int64)

    def dense(self, i: int) -> np.ndarray:
        """Full float32 probability vector of row ``i``: the stored one, or the top-k scattered into zeros."""
        if self.probs is not None:
            return np.asarray(self.probs[i], dtype=np.float32)
        out = np.zeros(self.num_classes, dtype=np.float32)
        out[self.topk_idx[i]] = self.topk_prob[i]
        return out
