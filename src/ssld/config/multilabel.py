"""What a multi-label config (``MultiLabelDataset``) must agree on: losses that read multi-hot labels, the
positive ratios the ``weight_ratio`` losses weigh by, and no operator that needs one class per image."""

from __future__ import annotations

from ssld.config.loader import KeyPath
from ssld.config.schema import SSLDConfig

MULTILABEL_DATASET = "MultiLabelDataset"
# losses that read multi-hot labels, or no labels at all (teacher-student only)
MULTILABEL_LOSSES = frozenset({
    "MultiLabelLoss", "DistillationMultiLabelLoss", "DistillationDMLLoss", "DistillationKLDivLoss",
    "DistillationJSDLoss", "DistillationDistanceLoss", "DistillationDISTLoss", "DistillationCELoss",
})
RATIO_LOSSES = frozenset({"MultiLabelLoss", "DistillationMultiLabelLoss", "DistillationDMLLoss"})


def multilabel_problem(cfg: SSLDConfig) -> tuple[KeyPath, str] | None:
    """The first disagreement, as (key path, message), or None."""
    for split in ("Train", "Eval"):
        section = getattr(cfg.DataLoader, split)
        if section is not None and section.dataset.label_ratio and section.dataset.name != MULTILABEL_DATASET:
            return (("DataLoader", split, "dataset", "label_ratio"),
                    f"only {MULTILABEL_DATASET} reads it (this dataset is {section.dataset.name}), got True")
    train = cfg.DataLoader.Train.dataset if cfg.DataLoader.Train is not None else None
    multi = train is not None and train.name == MULTILABEL_DATASET
    for i, entry in enumerate(cfg.Loss.Train):
        ((name, opts),) = entry.items()
        at = ("Loss", "Train", i, name)
        if multi and name not in MULTILABEL_LOSSES:
            return at, (f"needs one class per image, but {MULTILABEL_DATASET} gives multi-hot labels (use "
                        "MultiLabelLoss or DistillationMultiLabelLoss)")
        if name in RATIO_LOSSES and (opts or {}).get("weight_ratio") is True and not (multi and train.label_ratio):
            return (*at, "weight_ratio"), (f"needs the positive ratios of a {MULTILABEL_DATASET} with "
                                           "DataLoader.Train.dataset.label_ratio: True")
    if multi and train.batch_transform_ops:
        return (("DataLoader", "Train", "dataset", "batch_transform_ops"),
                f"not supported with {MULTILABEL_DATASET} (Mixup/CutMix mix single-label targets)")
    if multi and train.soft_labels:
        return (("DataLoader", "Train", "dataset", "soft_labels"),
                f"not supported with {MULTILABEL_DATASET} (the store holds softmax targets), got {train.soft_labels!r}")
    return None
