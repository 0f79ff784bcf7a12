"""The mining steps as library calls: label an image list, dedup a pool against references, select from a store.

``ssld label``, ``ssld dedup`` and ``ssld select`` parse their options and call these; the pipeline's mining stages
and the Python API call them directly and use the returned results. Each validates what it is given (one-line
``UserError``), writes its outputs atomically, and under torchrun splits its work over the ranks (rank 0 merges;
the other ranks get ``None`` where only rank 0 has a result).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ssld.config.schema import DataSplitConfig, SSLDConfig
from ssld.errors import UserError
from ssld.mining.rules import Thresholds

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class LabelResult:
    """A labeled store: where it is, its manifest, how many images it holds and which were skipped."""

    store: Path
    manifest: dict[str, Any]

    @property
    def count(self) -> int:
        return int(self.manifest.get("count", 0))

    @property
    def skipped(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("skipped", []))


@dataclass(frozen=True)
class DedupResult:
    """Dedup's report (``dedup_report.json``) and the cleaned pool list (``kept.txt``)."""

    out: Path
    report: dict[str, Any]

    @property
    def kept_list(self) -> Path:
        return self.out / "kept.txt"

    @property
    def removed(self) -> int:
        return int(self.report["removed"])


@dataclass(frozen=True)
class SelectResult:
    """The selected list, its statistics (``select_stats.json``) and the merged list when one was asked for."""

    out: Path
    stats: dict[str, Any]
    merged: Path | None
    num_classes: int


def _split(cfg: SSLDConfig, transform: Literal["eval", "train"], config_name: str, job: str) -> DataSplitConfig:
    split = cfg.DataLoader.Eval if transform == "eval" else cfg.DataLoader.Train
    if split is None:
        key = "Eval" if transform == "eval" else "Train"
        raise UserError(f"DataLoader.{key}: missing in {config_name}; {job} needs its transform_ops")
    return split


def label_images(
    image_list: PathLike, root: PathLike, cfg: SSLDConfig, out: PathLike, *, weights: str | None = None,
    topk: int = 10, full: bool = False, embed: bool = True, transform: Literal["eval", "train"] = "eval",
    batch_size: int | None = None, workers: int | None = None, shard_size: int = 4096, config_name: str = "the config",
) -> LabelResult | None:
    """Soft-label every image of ``image_list`` with the config's teacher into the store ``out`` (top-``topk``
    probabilities, optionally the full vectors and the pooled embeddings). A killed run resumes its shards."""
    from ssld.data import ImageListDataset, build_transform, read_list
    from ssld.mining.label import label
    from ssld.mining.teacher import load_teacher
    from ssld.models.precision import resolve_precision
    from ssld.utils import distributed as dist
    from ssld.utils.device import resolve_device
    from ssld.utils.io import sha256_file

    if topk < 1:
        raise UserError("--topk: must be at least 1")
    split = _split(cfg, transform, config_name, "label")
    samples = read_list(image_list, str(root))  # labels are ignored: any integer is fine here
    if not samples:
        raise UserError(f"--list {image_list}: no images in the list; nothing to label")
    device = resolve_device(cfg.Global.device)
    owns_group = not dist.is_initialized()  # a caller's process group is left as it was
    dist.init_from_env(device)
    rank = dist.rank()
    try:
        teacher = load_teacher(cfg, weights, device)
        ops = split.dataset.transform_ops
        dataset = ImageListDataset(samples, build_transform(ops, fit_size=cfg.Global.image_shape[1:]))
        meta = {
            "teacher": teacher.model_name, "teacher_key": teacher.name, "weights": teacher.weights,
            "weights_sha256": teacher.weights_sha256, "transform": ops, "transform_split": transform,
            "source_list": str(image_list), "source_sha256": sha256_file(image_list), "image_root": str(root),
        }
        manifest = label(
            dataset, teacher.model, out, paths=[os.path.relpath(s.path, root) for s in samples],
            files=[s.path for s in samples], meta=meta, num_classes=teacher.num_classes, topk=topk, full=full,
            embed=embed, batch_size=batch_size or split.sampler.batch_size,
            workers=split.loader.num_workers if workers is None else workers, shard_size=shard_size, device=device,
            amp_dtype=resolve_precision(cfg.AMP, device).dtype,
        )
    finally:
        if owns_group:
            dist.shutdown()
    return LabelResult(Path(out), manifest) if rank == 0 else None


def dedup_images(
    pool_list: PathLike, ref_list: PathLike, root: PathLike, cfg: SSLDConfig | None, out: PathLike, *,
    ref_root: PathLike | None = None, weights: str | None = None, store: PathLike | None = None,
    thresholds: Thresholds | None = None, batch_size: int | None = None, workers: int | None = None,
    pairs: int = 24, config_name: str = "the config",
) -> DedupResult | None:
    """Remove the pool images that copy a reference image (docs/mining.md has the rules): writes ``kept.txt``,
    ``removed.csv``, ``pairs.png`` and ``dedup_report.json`` into ``out``. With ``store`` (a store ``label_images``
    wrote with embeddings, same teacher and transform) the pool's embeddings come from it: one teacher pass.
    ``cfg=None`` runs without a teacher: hashes, thumbnails, the alignment, the grain and SIFT, which need no
    weights (the photo benchmark's setting); ``workers`` then defaults to 2."""
    from ssld.data import read_list
    from ssld.mining.dedup import decide, dedup_transform, search
    from ssld.mining.dedup_files import (
        merge_parts,
        save_part,
        shard_rows,
        write_dedup_outputs,
    )
    from ssld.mining.label import progress_enabled
    from ssld.mining.teacher import load_teacher
    from ssld.models.precision import resolve_precision
    from ssld.utils import distributed as dist
    from ssld.utils.device import resolve_device

    th = thresholds or Thresholds()
    if th.k < 2:
        raise UserError("--knn: must be at least 2 (the margin needs a second-best reference)")
    root, ref_root = str(root), str(ref_root or root)
    pool, ref = read_list(pool_list, root), read_list(ref_list, ref_root)
    if not pool:
        raise UserError(f"--pool {pool_list}: no images in the list")
    if not ref:
        raise UserError(f"--ref {ref_list}: no images in the list")
    split = None
    if cfg is None:
        if weights or store:
            raise UserError(f"--{'weights' if weights else 'store'}: needs the teacher's config (-c), not "
                            "--no-teacher")
    else:
        split = cfg.DataLoader.Eval or cfg.DataLoader.Train
        if split is None:
            raise UserError(f"DataLoader.Eval: missing in {config_name}; dedup needs its transform_ops")
    device = resolve_device(cfg.Global.device if cfg else "cpu")
    owns_group = not dist.is_initialized()  # a caller's process group is left as it was
    dist.init_from_env(device)
    rank, world = dist.rank(), dist.world_size()
    try:
        teacher = load_teacher(cfg, weights, device) if cfg is not None else None
        workers = (split.loader.num_workers if split else 2) if workers is None else workers
        t0 = time.perf_counter()
        rows = shard_rows(len(pool), rank, world)  # torchrun: each rank one block of the pool, all references
        pool_files, ref_files = [pool[i].path for i in rows], [s.path for s in ref]
        pool_embed = _store_embeddings(store, pool_files, teacher, split) if store else None
        nb = search(pool_files, ref_files, teacher.model if teacher else None,
                    dedup_transform(cfg, split) if teacher else None, k=th.k,
                    batch_size=batch_size or (split.sampler.batch_size if split else 128), workers=workers,
                    device=device, amp_dtype=resolve_precision(cfg.AMP, device).dtype if cfg else None,
                    progress=progress_enabled(rank), pool_embed=pool_embed,
                    thumb_knn=True if th.thumb_min <= 1 else None, sift_side=th.sift_min_size)
        matches = decide(nb, th, pool_files, ref_files, progress=progress_enabled(rank), workers=max(1, workers))
        matches = [replace(m, pool=int(rows[m.pool])) for m in matches]
        from_store = int(pool_embed[1].sum()) if pool_embed else 0
        if world > 1:
            save_part(Path(out), rank, rows, nb, matches, {"from_store": from_store})
            dist.barrier()
            if rank != 0:
                return None
            nb, matches, counts = merge_parts(Path(out), world, len(pool))
            from_store = counts["from_store"]
    finally:
        if owns_group:
            dist.shutdown()
    report = write_dedup_outputs(out, pool, ref, root, ref_root, nb, matches, pairs,
                                 extra={"thresholds": asdict(th), "teacher": teacher.model_name if teacher else None,
                                        "weights_sha256": teacher.weights_sha256 if teacher else None,
                                        "store": str(store) if store else None,
                                        "pool_embeddings_from_store": from_store, "ranks": world,
                                        "seconds_total": time.perf_counter() - t0})
    return DedupResult(Path(out), report)


def _store_embeddings(store_dir: PathLike, pool_files: list[str], teacher: Any, split: DataSplitConfig) -> Any:
    """Pool embeddings from a labeled store, refused when another teacher or transform wrote it."""
    from ssld.data.store import SoftLabelStore
    from ssld.mining.embed import store_embeddings

    store = SoftLabelStore.open(store_dir)
    m = store.manifest
    if m.get("weights_sha256") != teacher.weights_sha256 or m.get("teacher") != teacher.model_name:
        raise UserError(f"--store {store_dir}: labeled by {m.get('teacher')} (weights sha256 "
                        f"{str(m.get('weights_sha256'))[:12]}), not by this teacher {teacher.model_name} "
                        f"({teacher.weights_sha256[:12]}); its embeddings would not match the references'")
    if m.get("transform") != split.dataset.transform_ops:
        raise UserError(f"--store {store_dir}: labeled with transform_ops {m.get('transform')}, dedup's config "
                        f"has {split.dataset.transform_ops}; label with the same config (--transform eval)")
    image_root = m.get("image_root") or "."
    return store_embeddings(store, [os.path.relpath(f, image_root) for f in pool_files])


def select_images(
    store: PathLike, k: int, out: PathLike, *, keep: PathLike | None = None, min_score: float = 0.0,
    multi_label: bool = False, assign_label: bool = False, merge: PathLike | None = None,
    merged_out: PathLike | None = None,
) -> SelectResult:
    """Keep the ``k`` most confident images per class of a store (only those ``keep`` lists, when given) and write
    them as a list (``assign_label``: with the teacher's class as the label); ``merge`` also writes the labeled list
    followed by the selection. ``select_stats.json`` and ``select_counts.png`` go beside ``out``."""
    from ssld.data import write_list
    from ssld.data.store import SoftLabelStore
    from ssld.mining.plots import class_count_chart
    from ssld.mining.select import (
        merge_with_labeled,
        rows_in_list,
        select_topk,
        selected_entries,
        selection_stats,
    )
    from ssld.utils.io import write_json

    if k < 1:
        raise UserError(f"--k: must be a positive number of images per class, got {k}")
    if merged_out and not merge:
        raise UserError("--merged-out: needs --merge LABELED.txt")
    opened = SoftLabelStore.open(store)
    only = rows_in_list(opened, keep) if keep else None
    sel = select_topk(opened, k, min_score, multi_label, only)
    entries = selected_entries(opened, sel, assign_label)
    out = Path(out)
    merged = merge_with_labeled(merge, entries) if merge else None
    write_list(out, entries)
    stats = selection_stats(sel, min_score, multi_label)
    stats.update(store=str(store), image_root=opened.manifest.get("image_root"), list=str(out))
    if only is not None:
        stats.update(keep_list=str(keep), store_rows_kept=int(only.sum()), store_rows=len(opened))
    merged_path = None
    if merged is not None:
        merged_path = Path(merged_out) if merged_out else out.with_name("merged.txt")
        write_list(merged_path, merged)
        stats.update(merged_list=str(merged_path), merged_total=len(merged))
    write_json(out.with_name("select_stats.json"), stats)
    class_count_chart(sel.selected, sel.candidates, k, out.with_name("select_counts.png"))
    return SelectResult(out, stats, merged_path, opened.num_classes)
