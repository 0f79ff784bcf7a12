"""Datasets and DataLoaders from a ``DataLoader.Train`` / ``DataLoader.Eval`` config section.

All user mistakes (missing list or root, a batch larger than the shard) are raised before any work starts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from ssld.config.schema import DataSplitConfig, SSLDConfig
from ssld.data.dataset import ImageListDataset, LoaderView, collate
from ssld.data.lists import read_image_folder, read_list
from ssld.data.sampler import ResumableSampler
from ssld.data.transforms import build_transform
from ssld.errors import UserError

LIST_DATASETS = ("ImageNetDataset", "ListDataset", "CommonDataset")
MULTILABEL = "MultiLabelDataset"
log = logging.getLogger("ssld.data")


def _where(train: bool) -> str:
    return f"DataLoader.{'Train' if train else 'Eval'}.dataset"


def build_dataset(split: DataSplitConfig, train: bool, seed: int, image_size: int | None = None,
                  fit_size: Sequence[int] | None = None, num_classes: int | None = None) -> ImageListDataset:
    """The split's images (list file under ``image_root``, or ImageFolder) with its transform ops.

    ``fit_size`` (``Global.image_shape[1:]``) is the network's input size, which images of any size reach
    (``build_transform``); ``num_classes`` (``Arch.class_num``) bounds the labels, checked before any work.
    """
    ds, where = split.dataset, _where(train)
    if not Path(ds.image_root).is_dir():
        raise UserError(f"{where}.image_root: image root not found: {ds.image_root}")
    try:
        transform = build_transform(ds.transform_ops, image_size=image_size, fit_size=fit_size)
    except UserError as e:
        raise UserError(f"{where}.{e}") from None
    if ds.name == MULTILABEL:
        return _multilabel(split, train, seed, transform, num_classes)
    if ds.name in LIST_DATASETS:
        if not ds.cls_label_path:
            raise UserError(f"{where}.cls_label_path: required for {ds.name} (a list file of 'path label' lines)")
        if not Path(ds.cls_label_path).is_file():
            raise UserError(f"{where}.cls_label_path: list file not found: {ds.cls_label_path}")
        samples = read_list(ds.cls_label_path, ds.image_root, num_classes, "Arch.class_num")
    else:
        samples = read_image_folder(ds.image_root)
        top = max((s.label for s in samples), default=-1)
        if num_classes is not None and top >= num_classes:
            raise UserError(f"{where}.image_root: {ds.image_root} has {top + 1} class folders, more than "
                            f"Arch.class_num {num_classes}")
    if not samples:
        raise UserError(f"{where}: no images in {ds.cls_label_path or ds.image_root}")
    return _cached(ImageListDataset(samples, transform, seed=seed), split, train)


def _multilabel(split: DataSplitConfig, train: bool, seed: int, transform: Any,
                num_classes: int | None) -> ImageListDataset:
    """A ``MultiLabelDataset`` list (``ssld.data.multilabel``)."""
    from ssld.data.multilabel import MultiLabelListDataset, read_multilabel_list

    ds, where = split.dataset, _where(train)
    if not ds.cls_label_path:
        raise UserError(f"{where}.cls_label_path: required for {ds.name} (a list file of '<path><TAB>0,1,...' "
                        "lines)")
    if not Path(ds.cls_label_path).is_file():
        raise UserError(f"{where}.cls_label_path: list file not found: {ds.cls_label_path}")
    samples, targets = read_multilabel_list(ds.cls_label_path, ds.image_root, num_classes, "Arch.class_num")
    if not samples:
        raise UserError(f"{where}: no images in {ds.cls_label_path}")
    dataset = MultiLabelListDataset(samples, targets, transform, seed=seed, label_ratio=ds.label_ratio)
    return _cached(dataset, split, train)


def _cached(dataset: ImageListDataset, split: DataSplitConfig, train: bool) -> ImageListDataset:
    """The dataset, decoded into memory first when ``cache_images`` is on."""
    ds, where, samples = split.dataset, _where(train), dataset.samples
    if ds.cache_images:
        import sys

        held = dataset.cache_decoded(progress=sys.stderr.isatty())
        decoded = sum(a is not None for a in dataset.decoded or [])
        if decoded == 0:
            raise UserError(f"{where}: none of the {len(samples)} images in {ds.cls_label_path or ds.image_root} "
                            f"could be read (first: {samples[0].path})")
        log.info("%s.cache_images: %d images decoded into memory (%.1f MB)%s", where, decoded, held / 2**20,
                 f"; {len(samples) - decoded} unreadable, skipped" if decoded < len(samples) else "")
        if dataset.use_batched():
            log.info("%s: transform_ops run on whole batches (ssld.data.batched)", where)
    return dataset


def config_options(cfg: SSLDConfig) -> dict[str, Any]:
    """``build_loader`` / ``build_dataset`` keywords from a whole config: the network's input size
    (``Global.image_shape``) and its class count (``Arch.class_num``; a distillation's smallest sub-model)."""
    arch = cfg.Arch
    classes = min(int(s.class_num or arch.class_num) for s in arch.model_specs().values()) \
        if arch.is_distillation else arch.class_num
    return {"fit_size": cfg.Global.image_shape[1:], "num_classes": classes}


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _worker_init(_: int) -> None:
    """Workers decode and augment one image at a time: one intra-op thread each avoids oversubscription."""
    torch.set_num_threads(1)


def build_loader(split: DataSplitConfig, train: bool, seed: int, image_size: int | None = None,
                 fit_size: Sequence[int] | None = None, num_classes: int | None = None) -> tuple[DataLoader, ResumableSampler]:
    """A DataLoader yielding ``collate`` batches, and its sampler (``set_epoch`` / ``set_start_batch``).

    Training shuffles and drops the last partial batch as the config says; evaluation never does either.
    ``fit_size`` and ``num_classes`` as in ``build_dataset``.
    """
    dataset = build_dataset(split, train, seed, image_size=image_size, fit_size=fit_size, num_classes=num_classes)
    collate_fn = collate
    if train and split.dataset.soft_labels:  # offline teacher: each sample carries its soft-label store row
        from ssld.data.soft_targets import SoftTargetDataset, soft_collate

        dataset = SoftTargetDataset.open(dataset, split.dataset.soft_labels, split.dataset.image_root)
        collate_fn = soft_collate
    rank, world = _dist()
    bs = split.sampler.batch_size
    drop_last = split.sampler.drop_last and train
    sampler = ResumableSampler(len(dataset), shuffle=split.sampler.shuffle and train, seed=seed, rank=rank,
                               world_size=world, drop_last=drop_last)
    if drop_last and bs > sampler.shard_size:
        raise UserError(f"DataLoader.{'Train' if train else 'Eval'}.sampler.batch_size: {bs} per process is more "
                        f"than the {sampler.shard_size} images of this rank's shard (drop_last would leave no batch)")
    lc = split.loader
    workers = lc.num_workers
    if workers and getattr(dataset, "dataset", dataset).batched is not None and not torch.cuda.is_available():
        # a batch costs ~2 ms here; on a CPU-only machine workers would only take cores from the training step
        log.info("%s.loader.num_workers: %d -> 0 (batched transforms on a CPU-only machine)",
                 f"DataLoader.{'Train' if train else 'Eval'}", workers)
        workers = 0
    extra = {"prefetch_factor": lc.prefetch_factor} if workers > 0 and lc.prefetch_factor else {}
    loader = DataLoader(
        LoaderView(dataset),
        batch_size=bs,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=torch.cuda.is_available() if lc.pin_memory is None else lc.pin_memory,
        drop_last=drop_last,
        persistent_workers=lc.persistent_workers and workers > 0,
        worker_init_fn=_worker_init if workers > 0 else None,
        **extra,
    )
    return loader, sampler
