"""Losses with PaddleClas names and config form; ``build_loss(entries)`` gives the weighted combination.

Importing this package registers every loss: ``CELoss``, ``DistillationGTCELoss``, ``DistillationCELoss``,
``DistillationDMLLoss``, ``DistillationJSDLoss``, ``DistillationKLDivLoss``, ``DistillationDKDLoss``,
``DistillationDISTLoss``, ``DistillationSKDLoss``, ``DistillationWSLLoss``, ``DistillationDistanceLoss``,
``MultiLabelLoss``, ``DistillationMultiLabelLoss``.
"""

from ssld.losses import (  # noqa: F401  (registration side effect)
    ce,
    dist,
    distance,
    dkd,
    dml,
    jsd,
    kl,
    multilabel,
    skd,
    soft_ce,
    wsl,
)
from ssld.losses.base import Loss, PairLoss
from ssld.losses.combined import CombinedLoss, build_loss, describe_loss
from ssld.losses.registry import LOSSES, register_loss, validate_loss_list

__all__ = ["LOSSES", "CombinedLoss", "Loss", "PairLoss", "build_loss", "describe_loss", "register_loss",
           "validate_loss_list"]
