"""Check a config without data or a full run: what a training run builds (model, loss, optimizer, schedule), one
forward+backward step on random images, and the data paths and stores it would read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssld.config.schema import SSLDConfig


def data_warnings(cfg: SSLDConfig) -> list[str]:
    """Missing image roots, list files, start weights and soft-label stores, one line each; present lists are parsed (malformed
    ones fail)."""
    from ssld.data import build_dataset
    from ssld.data.loader import config_options

    out = []
    for split in ("Train", "Eval"):
        section = getattr(cfg.DataLoader, split)
        if section is None:
            continue
        ds, where = section.dataset, f"DataLoader.{split}.dataset"
        missing = [(f"{where}.image_root", ds.image_root)] if not Path(ds.image_root).is_dir() else []
        if ds.cls_label_path and not Path(ds.cls_label_path).is_file():
            missing.append((f"{where}.cls_label_path", ds.cls_label_path))
        out += [f"warning: {key}: not found: {path} (train and eval refuse it)" for key, path in missing]
        if not missing:
            build_dataset(section, train=split == "Train", seed=cfg.Global.seed, **config_options(cfg))
    if cfg.DataLoader.Train is not None and cfg.DataLoader.Train.dataset.soft_labels:
        from ssld.engine.offline_teacher import build_offline
        from ssld.errors import UserError

        try:
            build_offline(cfg)  # the store exists, is complete, and matches the config's teacher
        except UserError as e:
            out.append(f"warning: {e} (train refuses it)")
    for key in ("pretrained_model", "checkpoints"):
        path = getattr(cfg.Global, key)
        if path and not Path(path).is_file():
            out.append(f"warning: Global.{key}: not found: {path} (train refuses it)")
    return out


def build_parts(cfg: SSLDConfig) -> tuple[Any, Any, Any]:
    """What a training run builds, without data: (model, train loss, optimizer); the lr schedule is built too.

    Every config mistake these parts can find raises a one-line UserError; unavailable pretrained weights are a
    warning and random weights (as in ``ssld check``)."""
    from ssld.engine.model_setup import build
    from ssld.engine.optim import build_optimizer
    from ssld.engine.scheduler import build_scheduler
    from ssld.engine.trainer import build_train_loss

    model = build(cfg, allow_random=True)
    loss_fn = build_train_loss(cfg)
    optimizer = build_optimizer(model, cfg.Optimizer, cfg.Arch.lr_mult_list)
    build_scheduler(optimizer, cfg.Optimizer, steps_per_epoch=10, epochs=cfg.Global.epochs)
    return model, loss_fn, optimizer


def step(cfg: SSLDConfig, batch_size: int) -> dict[str, float]:
    """One forward+backward+optimizer step on random images (half of them unlabeled) at Global.image_shape; a
    ``MultiLabelDataset`` config gets random multi-hot labels (with positive ratios when ``label_ratio``)."""
    import torch

    from ssld.models.precision import resolve_precision

    model, loss_fn, optimizer = build_parts(cfg)
    precision = resolve_precision(cfg.AMP, torch.device("cpu"))
    g = torch.Generator().manual_seed(cfg.Global.seed)
    images = torch.randn(batch_size, *cfg.Global.image_shape, generator=g)
    train = cfg.DataLoader.Train.dataset if cfg.DataLoader.Train is not None else None
    if train is not None and train.name == "MultiLabelDataset":
        from ssld.data.loader import config_options
        from ssld.data.multilabel import random_targets

        labels = random_targets(batch_size, config_options(cfg)["num_classes"], train.label_ratio, g)
    else:
        labels = torch.randint(0, cfg.Arch.class_num, (batch_size,), generator=g)
        labels[batch_size // 2:] = -1
    model.train()
    with precision.autocast():
        parts = loss_fn(model(images), labels)
    loss = parts["loss"]
    if not torch.isfinite(loss):
        from ssld.errors import UserError

        raise UserError(f"{cfg.Arch.name}: the test step's loss is not finite ({float(loss)})")
    if loss.requires_grad:
        loss.backward()
    optimizer.step()
    return {k: float(v.detach()) for k, v in parts.items()}
