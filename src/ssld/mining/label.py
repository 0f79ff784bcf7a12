"""Teacher inference over an image list into a soft-label store, in resumable shards.

Rows ``[j*S, (j+1)*S)`` of the list form shard ``j``; batches never cross a shard boundary, so a resumed run
feeds the teacher exactly the batches an uninterrupted run would and produces identical arrays. Under torchrun,
shard ``j`` belongs to rank ``j % world_size``; rank 0 merges after a barrier. The teacher runs in eval mode:
with train-mode BN its output would depend on which images share a batch, and the store must be the teacher's
function of the image alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ssld import __version__
from ssld.data import collate
from ssld.data.store import (
    completed_shards,
    merge_shards,
    read_manifest,
    write_manifest_pending,
    write_shard,
)
from ssld.errors import UserError
from ssld.utils import distributed as dist

log = logging.getLogger("ssld.mining")

# manifest keys that identify a labeling run: a rerun continues the shards only when all of them match
IDENTITY_KEYS = ("teacher", "weights_sha256", "transform", "num_classes", "k", "full", "embed", "source_sha256",
                 "source_count", "shard_size")
EMBED_FEATURES = "forward_head(forward_features(x), pre_logits=True), L2-normalised, stored as float16"


def can_embed(model: nn.Module) -> bool:
    """Whether the teacher exposes timm's ``forward_features``/``forward_head`` (its pooled pre-logits features)."""
    return hasattr(model, "forward_features") and hasattr(model, "forward_head")


def progress_enabled(rank: int) -> bool:
    """Progress bars on rank 0 at a terminal, or anywhere with ``SSLD_PROGRESS=1``."""
    return os.environ.get("SSLD_PROGRESS") == "1" or (rank == 0 and sys.stderr.isatty())


def shard_batches(shards: Sequence[int], n: int, shard_size: int, batch_size: int) -> list[tuple[int, list[int]]]:
    """``(shard, row ids)`` batches covering the given shards in order, never crossing a shard boundary."""
    out = []
    for j in shards:
        stop = min((j + 1) * shard_size, n)
        for start in range(j * shard_size, stop, batch_size):
            out.append((j, list(range(start, min(start + batch_size, stop)))))
    return out


def check_identity(out: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The existing manifest when it belongs to the same run; ``UserError`` when ``out`` holds another run."""
    old = read_manifest(out)
    if old is None:
        return None
    diff = [k for k in IDENTITY_KEYS if old.get(k, False if k == "embed" else None) != manifest.get(k)]
    if diff:
        raise UserError(
            f"--out {out}: holds a store from a different labeling run ({', '.join(diff)} differ); "
            "use another --out or delete it"
        )
    return old


def label(
    dataset: Dataset,
    model: nn.Module,
    out: str | os.PathLike[str],
    *,
    paths: Sequence[str],
    files: Sequence[str],
    meta: dict[str, Any],
    num_classes: int,
    topk: int = 10,
    full: bool = False,
    embed: bool = True,
    batch_size: int = 64,
    workers: int = 2,
    shard_size: int = 4096,
    device: str | torch.device = "cpu",
    amp_dtype: torch.dtype | None = None,
    on_shard: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Label every row of ``dataset`` with ``model`` into the store ``out``; returns the final manifest.

    ``paths[i]`` is written to paths.txt for row ``i``; ``files[i]`` is its file on disk (to tell a missing
    file from an unreadable one). ``meta`` holds the run's identity (teacher, weights_sha256, transform,
    source_sha256). ``on_shard(j)`` is called after shard ``j`` is on disk (tests use it to simulate a kill).
    With ``embed`` (and a teacher that has ``forward_features``/``forward_head``) the same forward pass also
    gives each image's pooled pre-logits embedding, stored as ``embed.npy``: dedup reads it from the store, so
    dedup + label cost one teacher forward per pool image.
    """
    n = len(paths)
    if n == 0:
        raise UserError("label: the image list is empty; nothing to label")
    if shard_size < 1 or batch_size < 1:
        raise UserError("label: --shard-size and --batch-size must be positive")
    out = Path(out)
    k = min(topk, num_classes)
    embed = bool(embed and can_embed(model))
    manifest = dict(meta, num_classes=num_classes, k=k, full=full, embed=embed, dtype="float16", source_count=n,
                    shard_size=shard_size, ssld_version=__version__, complete=False)
    if embed:
        manifest["embed_features"] = EMBED_FEATURES
    rank, world = dist.rank(), dist.world_size()
    old = check_identity(out, manifest)
    if old is not None and old.get("complete"):
        log.info("%s: already complete (%d images); nothing to do", out, old["count"])
        return old
    n_shards = (n + shard_size - 1) // shard_size
    fresh = rank == 0 and not out.exists()
    if rank == 0:
        write_manifest_pending(out, manifest)
    done = completed_shards(out)
    mine = [j for j in range(n_shards) if j % world == rank and j not in done]
    if done:
        log.info("%s: resuming, %d of %d shards already done", out, len(done), n_shards)
    try:
        if mine:
            _run_shards(dataset, model, out, mine, n, files, k, num_classes if full else None, embed, batch_size,
                        workers, shard_size, device, amp_dtype, on_shard, rank)
    except BaseException:
        if fresh and not completed_shards(out):  # nothing to resume: leave no store holding only a manifest
            shutil.rmtree(out, ignore_errors=True)
        raise
    dist.barrier()
    if rank != 0:
        return manifest
    final = merge_shards(out, n_shards, manifest, list(paths))
    log.info("%s: %d images labeled, %d skipped", out, final["count"], len(final["skipped"]))
    return final


def _run_shards(dataset: Dataset, model: nn.Module, out: Path, shards: list[int], n: int, files: Sequence[str],
                k: int, full_classes: int | None, embed: bool, batch_size: int, workers: int, shard_size: int, device: str | torch.device,
                amp_dtype: torch.dtype | None, on_shard: Callable[[int], None] | None, rank: int) -> None:
    """Compute and write the given shards, one file each as soon as its last batch is done."""
    device = torch.device(device)
    model = model.to(device).eval()
    plan = shard_batches(shards, n, shard_size, batch_size)
    loader = DataLoader(dataset, batch_sampler=[rows for _, rows in plan], num_workers=workers,
                        collate_fn=collate, pin_memory=device.type == "cuda")
    autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                else contextlib.nullcontext())
    parts: dict[str, list[np.ndarray]] = {}
    total = sum(len(rows) for _, rows in plan)
    bar = tqdm(total=total, unit="img", desc="label", disable=not progress_enabled(rank), dynamic_ncols=True)
    with torch.inference_mode(), bar:
        for step, (batch, (j, rows)) in enumerate(zip(loader, plan, strict=True)):
            got = np.empty(0, dtype=np.int64)
            if len(batch["index"]):
                x = batch["image"].to(device, non_blocking=True)
                with autocast:
                    if embed:  # one backbone pass gives both the logits and the pooled embedding
                        feats = model.forward_features(x)
                        logits = model.forward_head(feats)
                        pooled = model.forward_head(feats, pre_logits=True)
                    else:
                        logits = model(x)
                if embed:
                    parts.setdefault("embed", []).append(nn.functional.normalize(pooled.float(), dim=-1).half())
                probs = logits.float().softmax(dim=-1)
                top_p, top_i = probs.topk(k, dim=-1)
                got = batch["index"].numpy().astype(np.int64)
                parts.setdefault("index", []).append(got)
                parts.setdefault("topk_idx", []).append(top_i.to(torch.int32))
                parts.setdefault("topk_prob", []).append(top_p.half())
                if full_classes:
                    parts.setdefault("probs", []).append(probs.half())
            bad = np.setdiff1d(np.asarray(rows, dtype=np.int64), got)
            parts.setdefault("bad", []).append(bad)
            bar.update(len(rows))
            if step + 1 == len(plan) or plan[step + 1][0] != j:
                _flush_shard(out, j, _to_host(parts), k, full_classes, embed, files)
                parts = {}
                if on_shard is not None:
                    on_shard(j)


def _to_host(parts: dict[str, list[Any]]) -> dict[str, list[np.ndarray]]:
    """One device-to-host copy per shard: copying every batch would make the GPU wait for the host each batch."""
    return {name: [torch.cat(v).cpu().numpy()] if v and torch.is_tensor(v[0]) else v for name, v in parts.items()}


def _flush_shard(out: Path, j: int, parts: dict[str, list[np.ndarray]], k: int, full_classes: int | None,
                 embed: bool, files: Sequence[str]) -> None:
    """Concatenate a shard's batches (empty arrays when every image was unreadable) and write it."""
    empty = {"index": np.empty(0, np.int64), "topk_idx": np.empty((0, k), np.int32),
             "topk_prob": np.empty((0, k), np.float16), "bad": np.empty(0, np.int64)}
    arrays = {name: np.concatenate(parts[name]) if name in parts else arr for name, arr in empty.items()}
    if full_classes:
        arrays["probs"] = (np.concatenate(parts["probs"]) if "probs" in parts
                           else np.empty((0, full_classes), np.float16))
    if embed:
        arrays["embed"] = np.concatenate(parts["embed"]) if "embed" in parts else np.empty((0, 0), np.float16)
    arrays["missing"] = np.array([not os.path.exists(files[i]) for i in arrays["bad"]], dtype=bool)
    write_shard(out, j, arrays)
