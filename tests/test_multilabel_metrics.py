"""Attribute metrics (PaddleClas's ATTRMetric) against hand-computed values, and multi-label evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ssld.config.schema import MetricConfig
from ssld.engine.attr_metrics import attr_metrics, attr_threshold, selection_metric
from ssld.engine.evaluate import evaluate

# 4 images x 3 attributes; -1 is unknown. At 0.5 the predictions are [[1,1,0],[0,1,(1)],[1,0,0],[0,0,1]].
GT = np.array([[1, 0, 1], [0, 1, -1], [1, 1, 0], [0, 0, 0]])
PROBS = np.array([[0.9, 0.6, 0.2], [0.1, 0.8, 0.95], [0.7, 0.3, 0.4], [0.2, 0.1, 0.55]])


def test_hand_computed_values() -> None:
    m = attr_metrics(GT, PROBS, 0.5)
    # per class: (pos recall, neg recall, precision) = (1, 1, 1), (1/2, 1/2, 1/2), (0, 1/2, 0)
    assert m["mA"] == pytest.approx((1 + 0.5 + 0.25) / 3)
    assert m["label_pos_recall"] == pytest.approx(0.5)
    assert m["label_neg_recall"] == pytest.approx(2 / 3)
    assert m["label_f1"] == pytest.approx((1 + 0.5 + 0) / 3)
    # per image: |y∩ŷ|, |y∪ŷ|, |ŷ|, |y| = (1,3,2,2), (1,1,1,1) (the unknown entry counts nowhere), (1,2,1,2), (0,1,1,0)
    assert m["instance_acc"] == pytest.approx((1 / 3 + 1 + 1 / 2 + 0) / 4)
    assert m["instance_prec"] == pytest.approx((1 / 2 + 1 + 1 + 0) / 4)
    assert m["instance_recall"] == pytest.approx((1 / 2 + 1 + 1 / 2 + 0) / 4)
    assert m["instance_f1"] == pytest.approx(2 * 0.625 * 0.5 / (0.625 + 0.5))


def test_threshold_is_strict_and_moves_the_predictions() -> None:
    # at 0.65: [[1,0,0],[0,1,(1)],[1,0,0],[0,0,0]] -> class mA 1, (1/2 + 1)/2, (0 + 1)/2
    assert attr_metrics(GT, PROBS, 0.65)["mA"] == pytest.approx((1 + 0.75 + 0.5) / 3)
    at = attr_metrics(GT, np.full(GT.shape, 0.5), 0.5)  # nothing above the threshold: every prediction negative
    assert at["label_pos_recall"] == 0.0 and at["label_neg_recall"] == pytest.approx(1.0)


def test_metrics_do_not_depend_on_row_order_or_unknown_predictions() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(-1, 2, (50, 6))
    probs = rng.random((50, 6))
    perm = rng.permutation(50)
    other = np.where(gt == -1, 1 - probs, probs)  # predictions on unknown entries changed
    a, b, c = attr_metrics(gt, probs), attr_metrics(gt[perm], probs[perm]), attr_metrics(gt, other)
    for k in a:
        assert a[k] == pytest.approx(b[k]) and a[k] == pytest.approx(c[k])


def test_threshold_comes_from_the_metric_section() -> None:
    assert attr_threshold(None) == 0.5
    assert attr_threshold(MetricConfig(Eval=[{"ATTRMetric": None}])) == 0.5
    assert attr_threshold(MetricConfig(Eval=[{"TopkAcc": {"topk": [1, 5]}}, {"ATTRMetric": {"threshold": 0.3}}])) == 0.3
    with pytest.raises(ValueError, match=r"ATTRMetric.threshold: must be a number between 0 and 1, got 1.5"):
        MetricConfig(Eval=[{"ATTRMetric": {"threshold": 1.5}}])
    with pytest.raises(ValueError, match="unknown argument 'thresh'"):
        MetricConfig(Eval=[{"ATTRMetric": {"thresh": 0.5}}])


def test_selection_metric() -> None:
    assert selection_metric({"top1": 0.5, "top5": 0.9}) == "top1"
    assert selection_metric({"mA": 0.7, "loss": 0.3}) == "mA"
    assert selection_metric({}) == "top1"


class _Fixed(nn.Module):
    """Returns the logits stored for each image (the image's first pixel is its row number)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[x[:, 0, 0, 0].long()]


def test_evaluate_gives_the_attribute_metrics_once_per_image() -> None:
    logits = torch.logit(torch.tensor(PROBS, dtype=torch.float32))
    model = _Fixed(logits)
    targets = torch.tensor(GT, dtype=torch.float32)
    ratio = torch.full_like(targets, 0.5)

    def batch(rows: list[int]) -> dict:
        images = torch.zeros(len(rows), 3, 2, 2)
        images[:, 0, 0, 0] = torch.tensor(rows, dtype=torch.float32)
        label = torch.stack([targets[rows], ratio[rows]], dim=1)  # [B, 2, C]: label_ratio lists
        return {"image": images, "label": label, "index": torch.tensor(rows), "bad": []}

    # the last batch repeats image 0, as a padded distributed shard does: counted once
    out = evaluate(model, [batch([0, 1]), batch([2, 3]), batch([0])], threshold=0.5)
    expected = attr_metrics(GT, PROBS, 0.5)
    assert out["count"] == 4 and out["bad"] == 0
    for k, v in expected.items():
        assert out[k] == pytest.approx(v, abs=1e-6)
    known = targets >= 0
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets.clamp_min(0), reduction="none")
    assert out["loss"] == pytest.approx(float(((bce * known).sum(1) / known.sum(1)).mean()), rel=1e-5)
    assert "top1" not in out
    plain = evaluate(model, [{**batch([0, 1, 2, 3]), "label": targets}], threshold=0.65)  # [B, C] labels
    assert plain["mA"] == pytest.approx(attr_metrics(GT, PROBS, 0.65)["mA"])


def test_evaluate_with_no_known_target() -> None:
    model = _Fixed(torch.zeros(2, 3))
    b = {"image": torch.zeros(2, 3, 2, 2), "label": torch.full((2, 3), -1.0), "index": torch.arange(2), "bad": []}
    out = evaluate(model, [b])
    assert out["count"] == 0 and out["mA"] == 0.0
