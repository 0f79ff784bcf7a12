"""The PaddleClas logit losses beyond the float64 formulas of test_losses.py: options, labels, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.configs import NAMES, PAIR

from ssld.losses import build_loss, validate_loss_list


def _logits(shape=(8, 6), seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * scale, torch.randn(shape, generator=g) * scale


def _run(name, s, t, labels, **opts):
    return build_loss([{name: opts}])({"Student": s, "Teacher": t}, labels)[name]


@pytest.mark.parametrize("name", ["DistillationSKDLoss", "DistillationWSLLoss"])
def test_unlabeled_rows_and_use_target_as_gt_take_the_teacher_argmax(name):
    s, t = _logits(seed=1)
    y = torch.tensor([1, -1, 0, -1, 5, 2, -1, 3])
    filled = torch.where(y >= 0, y, t.argmax(-1))
    opts = {"model_name_pairs": PAIR}
    assert _run(name, s, t, y, **opts).item() == pytest.approx(_run(name, s, t, filled, **opts).item(), rel=1e-6)
    argmax = _run(name, s, t, t.argmax(-1), **opts)
    assert _run(name, s, t, y, **opts, use_target_as_gt=True).item() == pytest.approx(argmax.item(), rel=1e-6)
    assert _run(name, s, t, None, **opts).item() == pytest.approx(argmax.item(), rel=1e-6)


def test_wsl_gradient_holds_the_weight_constant():
    s, t = _logits((5, 4), seed=2, scale=1.0)
    y = torch.tensor([0, 3, -1, 1, 2])
    x = s.double().requires_grad_(True)
    _run("DistillationWSLLoss", x, t.double(), y, model_name_pairs=PAIR, T=2.0).backward()
    # by hand: w from the (detached) hard-target cross-entropies, then T²·mean(w · soft CE)
    target = torch.where(y >= 0, y, t.argmax(-1))[:, None]
    ce_s = -torch.log_softmax(s.double(), -1).gather(1, target)[:, 0]
    ce_t = -torch.log_softmax(t.double(), -1).gather(1, target)[:, 0]
    w = 1 - torch.exp(-(ce_s / (ce_t + 1e-7)).clamp_min(0))
    x2 = s.double().requires_grad_(True)
    kd = -(torch.softmax(t.double() / 2, -1) * torch.log_softmax(x2 / 2, -1)).sum(-1)
    ((kd * w).mean() * 4).backward()
    assert torch.allclose(x.grad, x2.grad)


def test_dist_vanishes_on_agreement_and_skd_ignores_logit_scale():
    s, _ = _logits((8, 6), seed=3)
    assert abs(_run("DistillationDISTLoss", s, s.clone(), None, model_name_pairs=PAIR).item()) < 1e-6
    # layer normalisation removes the teacher's scale and shift: only its ranking and relative gaps matter
    t = torch.randn(8, 6, generator=torch.Generator().manual_seed(4))
    a = _run("DistillationSKDLoss", s, t, torch.zeros(8, dtype=torch.long), model_name_pairs=PAIR)
    b = _run("DistillationSKDLoss", s, 5 * t + 2, torch.zeros(8, dtype=torch.long), model_name_pairs=PAIR)
    assert a.item() == pytest.approx(b.item(), rel=1e-4)


def test_distance_act_and_feature_keys():
    s, t = _logits(seed=5)
    soft = _run("DistillationDistanceLoss", s, t, None, model_name_pairs=PAIR, act="softmax", mode="l1")
    expect = (torch.softmax(s.double(), -1) - torch.softmax(t.double(), -1)).abs().mean()
    assert soft.item() == pytest.approx(expect.item(), rel=1e-5)
    fn = build_loss([{"DistillationDistanceLoss": {"model_name_pairs": PAIR, "key": "blocks4"}}])
    with pytest.raises(ValueError, match="key 'blocks4' names a feature output, but Student returns its logits only"):
        fn({"Student": s, "Teacher": t}, None)  # never silently the logits
    feats = {"Student": {"logits": s, "blocks4": s[:, :, None, None] * 2},
             "Teacher": {"logits": t, "blocks4": t[:, :, None, None]}}
    assert fn(feats, None)["loss"].item() == pytest.approx(((2 * s - t) ** 2).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match=r"\.mode: must be one of l2, l1, smooth_l1, got 'l3'"):
        build_loss([{"DistillationDistanceLoss": {"model_name_pairs": PAIR, "mode": "l3"}}])


def test_multilabel_weight_ratio_against_float64_formula():
    g = torch.Generator().manual_seed(6)
    s = torch.randn(5, 4, generator=g) * 2
    targets = (torch.rand(5, 4, generator=g) > 0.5).double()
    targets[1, 2] = -1  # an unlabeled entry
    targets[3] = -1  # an unlabeled row
    ratio = torch.rand(4, generator=g).double().expand(5, 4)
    labels = torch.stack([targets, ratio], dim=1)  # [B, 2, C], as PaddleClas's MultiLabelDataset with label_ratio
    got = build_loss([{"MultiLabelLoss": {"weight_ratio": True, "size_sum": True}}])(s, labels)["loss"]
    x, y, r = s.double().numpy(), targets.numpy(), ratio.numpy()
    bce = np.logaddexp(0, x) - np.clip(y, 0, None) * x  # -(y log σ + (1 − y) log(1 − σ))
    pos = (y > 0.5).astype(float)
    cost = bce * np.exp(pos * (1 - r) + (1 - pos) * r) * (y >= 0)
    keep = (y >= 0).any(1)
    assert got.item() == pytest.approx(cost[keep].sum(1).mean(), rel=1e-5)
    multi_hot = build_loss([{"MultiLabelLoss": None}])(s, targets)["loss"]
    assert multi_hot.item() == pytest.approx((bce * (y >= 0))[keep].sum() / (keep.sum() * 4), rel=1e-5)
    with pytest.raises(ValueError, match="weight_ratio needs"):
        build_loss([{"MultiLabelLoss": {"weight_ratio": True}}])(s, targets)


def test_distillation_multilabel_sums_its_models():
    s, t = _logits(seed=7)
    y = torch.tensor([1, 0, 2, -1, 5, 4, 3, 2])
    fn = build_loss([{"DistillationMultiLabelLoss": {"model_names": ["Student", "Teacher"]}}])
    single = build_loss([{"MultiLabelLoss": None}])
    expect = single(s, y)["loss"] + single(t, y)["loss"]
    assert fn({"Student": s, "Teacher": t}, y)["loss"].item() == pytest.approx(expect.item(), rel=1e-6)


@pytest.mark.parametrize(("entry", "message"), [
    ({"DistillationPairLoss": {"base_loss_name": "MGDLoss", "model_name_pairs": PAIR}},
     ("[0].DistillationPairLoss: the PaddleClas loss 'DistillationPairLoss' is not supported (base_loss_name "
      "'MGDLoss': feature-map distillation is not implemented)")),
    ({"AFDLoss": {"model_name_pair": ["Student", "Teacher"]}},
     "[0].AFDLoss: the PaddleClas loss 'AFDLoss' is not supported (feature-map distillation"),
    ({"TripletLossV2": None}, "[0].TripletLossV2: the PaddleClas loss 'TripletLossV2' is not supported (metric"),
    ({"DistillationFancyLoss": None}, "[0].DistillationFancyLoss: unknown loss (known:"),
    ({"DistillationDISTLos": None}, "[0].DistillationDISTLos: unknown loss; did you mean 'DistillationDISTLoss'?"),
])
def test_loss_refusals(entry, message):
    with pytest.raises(ValueError) as info:
        validate_loss_list([entry], NAMES)
    assert str(info.value).startswith(message), str(info.value)
    if "did you mean" not in message:
        assert "did you mean" not in str(info.value)


def test_paddleclas_loss_lines_validate():
    """The loss entries PaddleClas's classification distillation configs use, written out here."""
    validate_loss_list([
        {"DistillationGTCELoss": {"weight": 1.0, "model_names": ["Student"]}},
        {"DistillationDISTLoss": {"weight": 2.0, "model_name_pairs": PAIR}},
        {"DistillationSKDLoss": {"weight": 1.0, "model_name_pairs": PAIR, "temperature": 1.0, "multiplier": 2.0,
                                 "alpha": 0.9}},
        {"DistillationWSLLoss": {"weight": 2.5, "model_name_pairs": PAIR, "temperature": 2}},
        {"DistillationDKDLoss": {"weight": 1.0, "model_name_pairs": PAIR, "temperature": 1, "alpha": 1.0,
                                 "beta": 1.0}},
        {"DistillationDistanceLoss": {"weight": 1.0, "key": "logits", "model_name_pairs": PAIR}},
        {"DistillationMultiLabelLoss": {"weight": 1.0, "weight_ratio": True, "model_names": ["Student"],
                                        "size_sum": True}},
    ], NAMES)
    validate_loss_list([{"MultiLabelLoss": {"weight": 1.0, "weight_ratio": True, "size_sum": True}}], None)


def test_dml_paddleclas_multilabel_options_against_float64_formula():
    s, t = _logits((5, 4), seed=8)
    plain = _run("DistillationDMLLoss", s, t, None, model_name_pairs=PAIR)
    summed = _run("DistillationDMLLoss", s, t, None, model_name_pairs=PAIR, sum_across_class_dim=True)
    assert summed.item() == pytest.approx(4 * plain.item(), rel=1e-6)  # PaddleClas: C·terms summed over classes
    g = torch.Generator().manual_seed(9)
    targets = (torch.rand(5, 4, generator=g) > 0.5).double()
    targets[2, 1] = -1
    ratio = torch.rand(4, generator=g).double().expand(5, 4)
    labels = torch.stack([targets, ratio], dim=1)
    got = _run("DistillationDMLLoss", s, t, labels, model_name_pairs=PAIR, weight_ratio=True)
    # PaddleClas's DMLLoss, literally (without its 1e-12 smoothing): C·½[t log(t/x) + x log(x/t)] per entry,
    # times the ratio weight, averaged over all entries
    x, y = np.exp(s.double().numpy()), np.exp(t.double().numpy())
    x, y = x / x.sum(1, keepdims=True), y / y.sum(1, keepdims=True)
    c = s.shape[1]
    terms = c * 0.5 * (y * np.log(y / x) + x * np.log(x / y))
    tg, r = targets.numpy(), ratio.numpy()
    pos = (tg > 0.5).astype(float)
    weight = np.exp(pos * (1 - r) + (1 - pos) * r) * (tg > -1)
    assert got.item() == pytest.approx((terms * weight).mean(), rel=1e-5)
    with pytest.raises(ValueError, match="weight_ratio needs"):
        _run("DistillationDMLLoss", s, t, torch.zeros(5, dtype=torch.long), model_name_pairs=PAIR, weight_ratio=True)


def _paddleclas_dml(s: np.ndarray, t: np.ndarray, eps: float) -> float:
    """PaddleClas's DMLLoss (softmax, float64): mean over entries of ``C/2 [t log((t+eps)/(s+eps)) + s log(...)]``."""
    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    ps, pt = softmax(s), softmax(t)
    c = s.shape[-1]
    cost = pt * np.log((pt + eps) / (ps + eps)) * c + ps * np.log((ps + eps) / (pt + eps)) * c
    return float((cost / 2).mean())


def test_dml_eps_follows_paddleclas_where_probabilities_vanish():
    """A train-mode teacher can have logit gaps of 60: below eps the log is PaddleClas's log(p + eps), and the loss
    is several times smaller than the exact symmetric KL (which ``eps: 0`` still gives)."""
    s, t = _logits((16, 10), seed=4, scale=1.0)
    t = t * 30.0
    value = _run("DistillationDMLLoss", s, t, None, model_name_pairs=PAIR)
    expected = _paddleclas_dml(s.double().numpy(), t.double().numpy(), 1e-12)
    assert value.item() == pytest.approx(expected, rel=1e-4)
    exact = _run("DistillationDMLLoss", s, t, None, model_name_pairs=PAIR, eps=0)
    assert exact.item() == pytest.approx(_paddleclas_dml(s.double().numpy(), t.double().numpy(), 0.0), rel=1e-4)
    assert exact.item() > 1.5 * value.item()
    x = s.clone().requires_grad_(True)
    _run("DistillationDMLLoss", x, t, None, model_name_pairs=PAIR).backward()
    assert torch.isfinite(x.grad).all()
