"""Attribute metrics of multi-label evaluation (PaddleClas's ``ATTRMetric``, the pedestrian-attribute metrics of
Li et al. / "Rethinking of PAR"): label-based mean accuracy and instance-based accuracy, precision, recall, F1.

Predictions are ``sigmoid(logit) > threshold``; entries whose target is -1 (unknown) count nowhere. Per class c
(label-based, over the images): pos_recall_c = TP/P, neg_recall_c = TN/N, ``mA`` = mean_c (pos_recall_c +
neg_recall_c) / 2, ``label_f1`` = mean_c of the F1 of precision_c = TP/(TP+FP) and pos_recall_c. Per image i
(instance-based, over the classes): acc_i = |y ∩ ŷ| / |y ∪ ŷ|, prec_i = |y ∩ ŷ| / |ŷ|, recall_i = |y ∩ ŷ| / |y|;
``instance_acc``, ``instance_prec`` and ``instance_recall`` are their means over the images and ``instance_f1``
the harmonic mean of the last two. Every ratio divides by (denominator + 1e-20), as PaddleClas does, so an
empty denominator gives 0 (a class without positives has pos_recall 0; an image with nothing true and nothing
predicted has acc 0).

Two PaddleClas defects are not copied: its evaluation thresholds the raw logits at 0.5 (its exported model and
post-processing apply the sigmoid first), and its ``label_f1`` pairs each class's precision with the recall
already averaged over the classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPS = 1e-20
NAMES = ("mA", "label_f1", "label_pos_recall", "label_neg_recall", "instance_f1", "instance_acc",
         "instance_prec", "instance_recall")


def attr_metrics(targets: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The metrics above from ``[N, C]`` targets (1, 0, -1) and probabilities."""
    gt = np.asarray(targets, dtype=np.float64)
    pred = (np.asarray(probs, dtype=np.float64) > threshold).astype(np.float64)
    pos, neg = (gt == 1), (gt == 0)
    pred = np.where(gt == -1, 0.0, pred) == 1  # unknown targets: predicted neither way
    tp, tn = (pos & pred).sum(0), (neg & ~pred).sum(0)
    fp = (neg & pred).sum(0)
    pos_recall = tp / (pos.sum(0) + EPS)
    neg_recall = tn / (neg.sum(0) + EPS)
    prec = tp / (tp + fp + EPS)
    inter, union = (pos & pred).sum(1), (pos | pred).sum(1)
    ins_acc = float(np.mean(inter / (union + EPS)))
    ins_prec = float(np.mean(inter / (pred.sum(1) + EPS)))
    ins_recall = float(np.mean(inter / (pos.sum(1) + EPS)))
    return {
        "mA": float(np.mean((pos_recall + neg_recall) / 2)),
        "label_f1": float(np.mean(2 * prec * pos_recall / (prec + pos_recall + EPS))),
        "label_pos_recall": float(np.mean(pos_recall)),
        "label_neg_recall": float(np.mean(neg_recall)),
        "instance_f1": 2 * ins_prec * ins_recall / (ins_prec + ins_recall + EPS),
        "instance_acc": ins_acc,
        "instance_prec": ins_prec,
        "instance_recall": ins_recall,
    }


def attr_threshold(metric_section: Any) -> float:
    """``threshold`` of the config's ``Metric.Eval`` ``ATTRMetric`` entry (default 0.5)."""
    for entry in (getattr(metric_section, "Eval", None) or []):
        if isinstance(entry, dict) and "ATTRMetric" in entry:
            return float((entry["ATTRMetric"] or {}).get("threshold", 0.5))
    return 0.5


def selection_metric(metrics: dict[str, Any]) -> str:
    """The metric a run keeps its best checkpoint by: ``mA`` for multi-label evaluation (PaddleClas's
    ``ATTRMetric`` returns it first), else ``top1``."""
    return "mA" if "mA" in metrics else "top1"
