"""Losses against independent float64 NumPy formulas, plus the safety properties SSLD training relies on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.configs import NAMES, PAIR

from ssld.losses import (
    LOSSES,
    CombinedLoss,
    PairLoss,
    build_loss,
    describe_loss,
    validate_loss_list,
)

# ---- independent float64 reference formulas ---------------------------------------------------------------

def np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise Σ p log(p/q) for probability arrays (0·log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log(p / q), 0.0).sum(-1)


def ref_ce(s, y, eps=0.0):
    keep = y >= 0
    if not keep.any():
        return 0.0
    p = np_softmax(s[keep])
    c = s.shape[1]
    target = (1 - eps) * np.eye(c)[y[keep]] + eps / c
    return float((-(target * np.log(p)).sum(-1)).mean())


def ref_soft_ce(s, t, T, t2=False):
    v = float((-(np_softmax(t / T) * np.log(np_softmax(s / T))).sum(-1)).mean())
    return v * T * T if t2 else v


def ref_kl(s, t, T):
    return float(np_kl(np_softmax(t / T), np_softmax(s / T)).mean() * T * T)


def ref_dml(s, t, T=1.0, act="softmax"):
    if act == "softmax":
        ps, pt = np_softmax(s / T), np_softmax(t / T)
        return float((0.5 * (np_kl(pt, ps) + np_kl(ps, pt))).mean())
    ps, pt = 1 / (1 + np.exp(-s / T)), 1 / (1 + np.exp(-t / T))
    bs, bt = np.stack([ps, 1 - ps], -1), np.stack([pt, 1 - pt], -1)
    return float((0.5 * (np_kl(bt, bs) + np_kl(bs, bt)).sum(-1)).mean())


def ref_jsd(s, t, T=1.0):
    ps, pt = np_softmax(s / T), np_softmax(t / T)
    m = 0.5 * (ps + pt)
    return float((0.5 * np_kl(ps, m) + 0.5 * np_kl(pt, m)).mean())


def ref_dkd(s, t, y, alpha, beta, T):
    """The paper's recipe literally: binary (target, rest) KL plus KL after masking the target logit by -1000."""
    target = np.where(y >= 0, y, t.argmax(-1))
    gt = np.eye(s.shape[1])[target]
    ps, pt = np_softmax(s / T), np_softmax(t / T)
    bs = np.stack([(ps * gt).sum(-1), (ps * (1 - gt)).sum(-1)], -1)
    bt = np.stack([(pt * gt).sum(-1), (pt * (1 - gt)).sum(-1)], -1)
    tckd = np_kl(bt, bs) * T * T
    nckd = np_kl(np_softmax(t / T - 1000.0 * gt), np_softmax(s / T - 1000.0 * gt)) * T * T
    return float((alpha * tckd + beta * nckd).mean())


def np_log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def hard_target(t, y):
    """The label, or the teacher's argmax for unlabeled rows (label -1)."""
    return np.where(y >= 0, y, t.argmax(-1))


def ref_dist(s, t, beta, gamma):
    """DIST: beta·(1 − mean row Pearson ρ) + gamma·(1 − mean column ρ) of the softmax outputs."""
    def rho(a, b):
        a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        return (a * b).sum(1) / (np.sqrt((a * a).sum(1)) * np.sqrt((b * b).sum(1)) + 1e-8)
    ys, yt = np_softmax(s), np_softmax(t)
    return float(beta * (1 - rho(ys, yt).mean()) + gamma * (1 - rho(ys.T, yt.T).mean()))


def ref_skd(s, t, y, T, multiplier, alpha):
    """Spherical KD: layer-normed (eps 1e-7) logits times multiplier; alpha·T²·soft CE + (1 − alpha)·hard CE."""
    def norm(x):
        return (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-7) * multiplier
    sn, tn = norm(s), norm(t)
    kd = (-(np_softmax(tn / T) * np_log_softmax(sn / T)).sum(-1)).mean() * T * T
    ce = (-np_log_softmax(sn)[np.arange(len(s)), hard_target(t, y)]).mean()
    return float(alpha * kd + (1 - alpha) * ce)


def ref_wsl(s, t, y, T):
    """Weighted soft labels: T²·mean((1 − exp(−max(CE_s / (CE_t + 1e-7), 0)))·soft CE)."""
    rows, target = np.arange(len(s)), hard_target(t, y)
    ratio = np.maximum(-np_log_softmax(s)[rows, target] / (-np_log_softmax(t)[rows, target] + 1e-7), 0)
    kd = -(np_softmax(t / T) * np_log_softmax(s / T)).sum(-1)
    return float((kd * (1 - np.exp(-ratio))).mean() * T * T)


def ref_distance(s, t, mode):
    d = s - t
    if mode == "l2":
        return float((d * d).mean())
    if mode == "l1":
        return float(np.abs(d).mean())
    return float(np.where(np.abs(d) < 1, 0.5 * d * d, np.abs(d) - 0.5).mean())


def ref_multilabel(s, y, eps=0.0, size_sum=False):
    """Sigmoid BCE against one-hot rows of the integer labels (rows labelled -1 left out), smoothed by eps."""
    keep = y >= 0
    if not keep.any():
        return 0.0
    x = s[keep]
    target = (1 - eps) * np.eye(s.shape[1])[y[keep]] + eps / s.shape[1]
    log_p, log_q = -np.logaddexp(0, -x), -np.logaddexp(0, x)  # log σ(x), log(1 − σ(x))
    bce = -(target * log_p + (1 - target) * log_q)
    return float(bce.sum(1).mean() if size_sum else bce.mean())


# T = 1 is also the huge-logit fp16 test's setting: smooth L1 has bounded gradients there, while L2's grow with
# the 1e4 logits past fp16's range in the head's weight gradient (a property of the MSE, not of the math here)
DISTANCE_MODES = {1.0: "smooth_l1", 2.0: "l2", 4.0: "l1"}


# ---- helpers ---------------------------------------------------------------------------------------------

def run_one(name: str, s: torch.Tensor, t: torch.Tensor | None = None, labels=None, **opts) -> torch.Tensor:
    entry = {name: opts}
    loss_fn = build_loss([entry])
    outputs = s if t is None else {"Student": s, "Teacher": t}
    return loss_fn(outputs, labels)[name]


def pair_logits(shape, seed, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * scale, torch.randn(shape, generator=g) * scale


SHAPES = [(1, 2), (7, 10), (32, 100)]
TEMPS = [1.0, 2.0, 4.0]


OPTS = {  # options each loss is exercised with; T is filled in by the test
    "CELoss": lambda T: {"epsilon": T / 10},
    "DistillationGTCELoss": lambda T: {"model_names": ["Student"]},
    "DistillationCELoss": lambda T: {"model_name_pairs": PAIR, "T": T},
    "DistillationKLDivLoss": lambda T: {"model_name_pairs": PAIR, "T": T},
    "DistillationDMLLoss": lambda T: {"model_name_pairs": PAIR, "T": T},
    "DistillationJSDLoss": lambda T: {"model_name_pairs": PAIR, "T": T},
    "DistillationDKDLoss": lambda T: {"model_name_pairs": PAIR, "T": T, "alpha": 0.7, "beta": 3.0},
    "DistillationDISTLoss": lambda T: {"model_name_pairs": PAIR, "beta": T, "gamma": 1.5},
    "DistillationSKDLoss": lambda T: {"model_name_pairs": PAIR, "T": T, "multiplier": 2.0, "alpha": 0.9},
    "DistillationWSLLoss": lambda T: {"model_name_pairs": PAIR, "T": T},
    "DistillationDistanceLoss": lambda T: {"model_name_pairs": PAIR, "mode": DISTANCE_MODES[T]},
    "MultiLabelLoss": lambda T: {"epsilon": T / 10, "size_sum": T > 1},
    "DistillationMultiLabelLoss": lambda T: {"model_names": ["Student"], "size_sum": T > 2},
}
SINGLE_MODEL = ("CELoss", "MultiLabelLoss")  # losses of one model's output (no teacher)


def ours(name, s, t, y, T):
    return run_one(name, s, None if name in SINGLE_MODEL else t, y, **OPTS[name](T))


def reference(name, s, t, y, T):
    sn, tn, yn = s.double().numpy(), t.double().numpy(), y.numpy()
    return {
        "CELoss": lambda: ref_ce(sn, yn, T / 10),
        "DistillationGTCELoss": lambda: ref_ce(sn, yn),
        "DistillationCELoss": lambda: ref_soft_ce(sn, tn, T),
        "DistillationKLDivLoss": lambda: ref_kl(sn, tn, T),
        "DistillationDMLLoss": lambda: ref_dml(sn, tn, T),
        "DistillationJSDLoss": lambda: ref_jsd(sn, tn, T),
        "DistillationDKDLoss": lambda: ref_dkd(sn, tn, yn, 0.7, 3.0, T),
        "DistillationDISTLoss": lambda: ref_dist(sn, tn, T, 1.5),
        "DistillationSKDLoss": lambda: ref_skd(sn, tn, yn, T, 2.0, 0.9),
        "DistillationWSLLoss": lambda: ref_wsl(sn, tn, yn, T),
        "DistillationDistanceLoss": lambda: ref_distance(sn, tn, DISTANCE_MODES[T]),
        "MultiLabelLoss": lambda: ref_multilabel(sn, yn, T / 10, T > 1),
        "DistillationMultiLabelLoss": lambda: ref_multilabel(sn, yn, 0.0, T > 2),
    }[name]()


# ---- exact math ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("T", TEMPS)
def test_matches_float64_formula(name, shape, T):
    s, t = pair_logits(shape, seed=sorted(LOSSES).index(name) * 100 + shape[1] + int(T))
    y = torch.randint(-1, shape[1], (shape[0],), generator=torch.Generator().manual_seed(1))
    value = ours(name, s, t, y, T)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(reference(name, s, t, y, T), rel=1e-4, abs=1e-5)


def test_sigmoid_dml_matches_bernoulli_formula():
    s, t = pair_logits((6, 5), seed=3)
    ours = run_one("DistillationDMLLoss", s, t, model_name_pairs=PAIR, act="sigmoid")
    assert ours.item() == pytest.approx(ref_dml(s.double().numpy(), t.double().numpy(), act="sigmoid"), rel=1e-4)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("scale", [0.1, 5.0, 50.0])
def test_non_negative(name, scale):
    for seed in range(5):
        s, t = pair_logits((16, 10), seed=seed, scale=scale)
        y = torch.randint(-1, 10, (16,), generator=torch.Generator().manual_seed(seed))
        assert ours(name, s, t, y, 2.0).item() >= 0.0


@pytest.mark.parametrize("opts", [
    {"DistillationDMLLoss": {}}, {"DistillationDMLLoss": {"act": "sigmoid"}}, {"DistillationJSDLoss": {"T": 3}},
    {"DistillationKLDivLoss": {}}, {"DistillationDKDLoss": {}},
])
def test_divergences_vanish_when_student_equals_teacher(opts):
    ((name, kw),) = opts.items()
    s, _ = pair_logits((16, 10), seed=4)
    value = run_one(name, s, s.clone(), torch.randint(0, 10, (16,)), model_name_pairs=PAIR, **kw)
    assert abs(value.item()) < 1e-6


def test_soft_ce_equals_teacher_entropy_when_equal():
    s, _ = pair_logits((16, 10), seed=5)
    value = run_one("DistillationCELoss", s, s.clone(), model_name_pairs=PAIR, T=2.0)
    p = np_softmax(s.double().numpy() / 2.0)
    assert value.item() == pytest.approx(float((-(p * np.log(p)).sum(-1)).mean()), rel=1e-5)


def test_kl_and_soft_ce_gradients_differ_by_t_squared_only():
    T = 3.0
    s, t = pair_logits((8, 10), seed=6)
    grads = []
    for name in ("DistillationKLDivLoss", "DistillationCELoss"):
        x = s.clone().requires_grad_(True)
        run_one(name, x, t, model_name_pairs=PAIR, T=T).backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1] * T * T, rtol=1e-5, atol=1e-7)
    t2 = run_one("DistillationCELoss", s, t, model_name_pairs=PAIR, T=T, t2_scale=True)
    assert t2.item() == pytest.approx(ref_soft_ce(s.double().numpy(), t.double().numpy(), T, t2=True), rel=1e-5)


def test_true_jsd_gradient_is_a_quarter_of_dml_near_agreement():
    """Why the ablations carry a 'true JSD x4' row: both losses ~ chi-square near p = q (1/8 vs 1/2)."""
    t = torch.randn(64, 10, generator=torch.Generator().manual_seed(3)) * 3
    s = t + 0.01 * torch.randn(64, 10, generator=torch.Generator().manual_seed(4))
    norms = []
    for name in ("DistillationDMLLoss", "DistillationJSDLoss"):
        x = s.clone().requires_grad_(True)
        run_one(name, x, t, model_name_pairs=PAIR).backward()
        norms.append(x.grad.norm().item())
    assert norms[0] / norms[1] == pytest.approx(4.0, rel=0.01)


def test_kl_direction_issue_538():
    """PaddleClas #538: a port swapped kl_div's arguments and went negative; ours is KL(teacher‖student) ≥ 0."""
    s, t = pair_logits((32, 10), seed=7)
    ours = run_one("DistillationKLDivLoss", s, t, model_name_pairs=PAIR, T=4.0)
    right = F.kl_div(F.log_softmax(s / 4, -1), F.softmax(t / 4, -1), reduction="batchmean") * 16
    swapped = F.kl_div(F.log_softmax(t / 4, -1), F.softmax(s / 4, -1), reduction="batchmean") * 16
    assert ours.item() >= 0
    assert ours.item() == pytest.approx(right.item(), rel=1e-5)
    assert ours.item() != pytest.approx(swapped.item(), rel=1e-3)


@pytest.mark.parametrize("seed", range(4))
def test_dkd_decomposes_kd(seed):
    """Per sample, KL(p_t‖p_s) = TCKD + (1 − p_t[target])·NCKD; alpha=beta=1 gives TCKD + NCKD."""
    T = 2.0
    s, t = pair_logits((1, 10), seed=seed)
    y = torch.tensor([seed])

    def dkd(a, b):
        return run_one("DistillationDKDLoss", s, t, y, model_name_pairs=PAIR, alpha=a, beta=b, T=T).item()

    tckd, nckd, both = dkd(1.0, 0.0), dkd(0.0, 1.0), dkd(1.0, 1.0)
    kd = run_one("DistillationKLDivLoss", s, t, model_name_pairs=PAIR, T=T).item()
    pt_target = np_softmax(t.double().numpy() / T)[0, seed]
    assert kd == pytest.approx(tckd + (1 - pt_target) * nckd, rel=1e-4)
    assert both == pytest.approx(tckd + nckd, rel=1e-5)


@pytest.mark.parametrize("name", ["DistillationKLDivLoss", "DistillationDKDLoss", "DistillationCELoss",
                                  "DistillationDMLLoss", "DistillationJSDLoss"])
def test_paddleclas_option_spellings(name):
    """PaddleClas configs say ``temperature`` (and DKD ``use_target_as_gt``); they mean T and use_target."""
    s, t = pair_logits((6, 5), seed=17)
    y = torch.tensor([0, -1, 2, 3, -1, 1])
    ours = run_one(name, s, t, y, model_name_pairs=PAIR, T=3.0)
    assert run_one(name, s, t, y, model_name_pairs=PAIR, temperature=3.0).item() == ours.item()
    if name == "DistillationDKDLoss":
        a = run_one(name, s, t, y, model_name_pairs=PAIR, use_target_as_gt=True)
        b = run_one(name, s, t, y, model_name_pairs=PAIR, use_target="teacher")
        assert a.item() == b.item()


def test_dkd_targets_unlabeled_rows_with_teacher_argmax():
    s, t = pair_logits((12, 10), seed=8)
    unlabeled = torch.full((12,), -1)
    by_teacher = run_one("DistillationDKDLoss", s, t, unlabeled, model_name_pairs=PAIR)
    forced = run_one("DistillationDKDLoss", s, t, torch.arange(12) % 10, model_name_pairs=PAIR,
                     use_target="teacher")
    with_argmax = run_one("DistillationDKDLoss", s, t, t.argmax(-1), model_name_pairs=PAIR)
    no_labels = run_one("DistillationDKDLoss", s, t, None, model_name_pairs=PAIR)
    assert by_teacher.item() == pytest.approx(with_argmax.item(), rel=1e-6)
    assert forced.item() == pytest.approx(with_argmax.item(), rel=1e-6)
    assert no_labels.item() == pytest.approx(with_argmax.item(), rel=1e-6)


# ---- gradients, precision, unlabeled rows ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(n for n in LOSSES if issubclass(LOSSES[n], PairLoss)))
def test_gradient_reaches_student_only(name):
    s, t = pair_logits((8, 10), seed=9)
    s.requires_grad_(True)  # t: a frozen teacher's output, computed under no_grad
    loss = run_one(name, s, t, torch.randint(0, 10, (8,)), model_name_pairs=PAIR)
    loss.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(n for n in LOSSES if issubclass(LOSSES[n], PairLoss)))
def test_mutual_learning_trains_both_models(name):
    """Both models trainable (PaddleClas's DML configs): the pair loss's gradient reaches both, as in PaddleClas."""
    s, t = pair_logits((8, 10), seed=9)
    s.requires_grad_(True)
    t.requires_grad_(True)
    run_one(name, s, t, torch.randint(0, 10, (8,)), model_name_pairs=PAIR).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is not None and t.grad.abs().sum() > 0


# WSL's weight is computed without gradient on purpose (PaddleClas detaches it): tested on its own
@pytest.mark.parametrize("name", sorted(n for n in LOSSES if n != "DistillationWSLLoss"))
def test_analytic_gradient_matches_finite_differences(name):
    s, t = pair_logits((3, 5), seed=18, scale=1.0)
    y = torch.tensor([1, -1, 4])
    fn = build_loss([{name: OPTS[name](2.0)}])

    def f(x):
        return fn(x if name in SINGLE_MODEL else {"Student": x, "Teacher": t.double()}, y)["loss"]

    assert torch.autograd.gradcheck(f, (s.double().requires_grad_(True),))


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_finite_under_low_precision_autocast_with_huge_logits(name, dtype):
    g = torch.Generator().manual_seed(10)
    head = torch.nn.Linear(4, 10)
    x = torch.randn(16, 4, generator=g) * 1e4
    t_logits = (torch.randn(16, 10, generator=g) * 1e4).to(dtype)
    y = torch.randint(-1, 10, (16,), generator=g)
    with torch.autocast("cpu", dtype=dtype):
        s_logits = head(x)
        assert s_logits.dtype == dtype
        loss = ours(name, s_logits, t_logits, y, 1.0)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    fp32 = ours(name, s_logits.detach().float(), t_logits.float(), y, 1.0)
    assert loss.item() == pytest.approx(fp32.item(), rel=1e-6)  # autocast does not lower the loss math
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())


@pytest.mark.parametrize("name", ["CELoss", "DistillationGTCELoss"])
def test_unlabeled_rows(name):
    s, t = pair_logits((10, 6), seed=11)
    opts = {"model_names": ["Student"]} if name == "DistillationGTCELoss" else {}
    outputs = {"Student": s, "Teacher": t} if name == "DistillationGTCELoss" else s
    loss_fn = build_loss([{name: opts}])

    x = s.clone().requires_grad_(True)
    zero = loss_fn({"Student": x, "Teacher": t} if opts else x, torch.full((10,), -1))["loss"]
    assert zero.item() == 0.0
    zero.backward()
    assert x.grad is not None and torch.all(x.grad == 0)

    y = torch.tensor([3, -1, 0, -1, -1, 5, 2, -1, 1, -1])
    keep = y >= 0
    subset = F.cross_entropy(s[keep], y[keep])
    assert loss_fn(outputs, y)["loss"].item() == pytest.approx(subset.item(), rel=1e-6)
    assert loss_fn(outputs, y[:, None])["loss"].item() == pytest.approx(subset.item(), rel=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_ce_accepts_soft_targets(eps):
    s, _ = pair_logits((5, 4), seed=12)
    target = torch.softmax(torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), -1)
    smoothed = (1 - eps) * target.double().numpy() + eps / 4
    expected = float((-(smoothed * np.log(np_softmax(s.double().numpy()))).sum(-1)).mean())
    assert run_one("CELoss", s, None, target, epsilon=eps).item() == pytest.approx(expected, rel=1e-5)


def test_float64_logits_stay_float64():
    s, t = pair_logits((4, 6), seed=16)
    value = run_one("DistillationJSDLoss", s.double(), t.double(), model_name_pairs=PAIR)
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(ref_jsd(s.double().numpy(), t.double().numpy()), rel=1e-10)


# ---- combination, output forms, reports ------------------------------------------------------------------

def test_weights_honoured_and_parts_unweighted():
    s, t = pair_logits((8, 10), seed=13)
    y = torch.randint(0, 10, (8,))
    single = build_loss([{"DistillationDMLLoss": {"weight": 0.25, "model_name_pairs": PAIR}}])
    out = single({"Student": s, "Teacher": t}, y)
    assert out["loss"].item() == pytest.approx(0.25 * out["DistillationDMLLoss"].item(), rel=1e-6)

    combo = build_loss([
        {"DistillationKLDivLoss": {"weight": 2.0, "model_name_pairs": PAIR, "T": 2}},
        {"DistillationKLDivLoss": {"weight": 0.5, "model_name_pairs": PAIR}},
        {"DistillationGTCELoss": {"weight": 1.0, "model_names": ["Student"]}},
    ])
    out = combo({"Student": s, "Teacher": t}, y)
    assert set(out) == {"loss", "DistillationKLDivLoss_1", "DistillationKLDivLoss_2", "DistillationGTCELoss"}
    expected = (2.0 * out["DistillationKLDivLoss_1"] + 0.5 * out["DistillationKLDivLoss_2"]
                + out["DistillationGTCELoss"])
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert out["DistillationKLDivLoss_1"].item() == pytest.approx(
        ref_kl(s.double().numpy(), t.double().numpy(), 2.0), rel=1e-4)


def test_defaults_when_options_are_none_and_pairs_are_summed():
    s, t = pair_logits((8, 10), seed=14)
    assert isinstance(build_loss([{"CELoss": None}]), CombinedLoss)
    assert build_loss([{"CELoss": None}])(s, torch.zeros(8, dtype=torch.long))["loss"].item() > 0
    outs = {"Student": s, "Teacher": t, "Peer": t.flip(0)}
    both = build_loss([{"DistillationJSDLoss": {"model_name_pairs": [["Student", "Teacher"], ["Student", "Peer"]]}}])
    sn = s.double().numpy()
    expected = ref_jsd(sn, t.double().numpy()) + ref_jsd(sn, t.flip(0).double().numpy())
    assert both(outs)["loss"].item() == pytest.approx(expected, rel=1e-4)


def test_dict_outputs_with_key():
    s, t = pair_logits((4, 10), seed=15)
    feats = torch.zeros(4, 3)
    nested = {"Student": {"logits": s, "feat": feats}, "Teacher": {"logits": t, "feat": feats}}
    value = build_loss([{"DistillationKLDivLoss": {"model_name_pairs": PAIR}}])(nested)["loss"]
    assert value.item() == pytest.approx(ref_kl(s.double().numpy(), t.double().numpy(), 4.0), rel=1e-4)
    other = {"Student": {"out": s}, "Teacher": {"out": t}}
    keyed = build_loss([{"DistillationKLDivLoss": {"model_name_pairs": PAIR, "key": "out"}}])(other)["loss"]
    assert keyed.item() == pytest.approx(value.item(), rel=1e-6)
    y = torch.arange(4)
    assert build_loss([{"CELoss": None}])({"logits": s, "feat": feats}, y)["loss"].item() == pytest.approx(
        F.cross_entropy(s, y).item(), rel=1e-6)
    with pytest.raises(ValueError, match="no model 'Teacher'"):
        build_loss([{"DistillationKLDivLoss": {"model_name_pairs": PAIR}}])({"Student": s, "Techer": t})
    with pytest.raises(ValueError, match="several models"):
        build_loss([{"CELoss": None}])({"Student": s, "Teacher": t}, y)


def test_describe_loss_names_the_divergence():
    text = describe_loss([{"DistillationDMLLoss": {"weight": 1.0, "model_name_pairs": PAIR}},
                          {"DistillationJSDLoss": {"weight": 0.5, "model_name_pairs": PAIR}}])
    assert text.startswith("DistillationDMLLoss (symmetric KL, 'JS divergence' in the reference) weight 1.0")
    assert "DistillationJSDLoss (true Jensen-Shannon divergence) weight 0.5 on Student<-Teacher" in text


# ---- validation ------------------------------------------------------------------------------------------

BAD = [
    ([{"DistillationDMLoss": {"model_name_pairs": PAIR}}], NAMES,
     "[0].DistillationDMLoss: unknown loss; did you mean 'DistillationDMLLoss'?"),
    ([{"CELoss": None}, {"DistillationKLDivLoss": {"model_name_pairs": PAIR, "Temp": 4}}], NAMES,
     "[1].DistillationKLDivLoss.Temp: unknown option; did you mean 'temperature'? (allowed: weight, "),
    ([{"DistillationKLDivLoss": {"model_name_pairs": PAIR, "T": 2, "temperature": 2}}], NAMES,
     "[0].DistillationKLDivLoss.temperature: give either T or temperature"),
    ([{"DistillationDKDLoss": {"model_name_pairs": PAIR, "use_target": "label", "use_target_as_gt": True}}],
     NAMES, "[0].DistillationDKDLoss.use_target_as_gt: contradicts use_target: label"),
    ([{"DistillationDMLLoss": {"model_name_pairs": [["Student", "Techer"]]}}], NAMES,
     ("[0].DistillationDMLLoss.model_name_pairs: pair 0 names model 'Techer', which is not in Arch.models "
      "(Student, Teacher); did you mean 'Teacher'?")),
    ([{"DistillationGTCELoss": {"model_names": ["Stu"]}}], NAMES,
     "[0].DistillationGTCELoss.model_names: entry 0 names model 'Stu'"),
    ([{"DistillationDMLLoss": {"model_name_pairs": PAIR}}], None,
     "[0].DistillationDMLLoss: a distillation loss needs a DistillationModel with at least two models"),
    ([{"DistillationDMLLoss": {"model_name_pairs": PAIR}}], ["Student"],
     "[0].DistillationDMLLoss: a distillation loss needs"),
    ([{"DistillationDMLLoss": {"model_name_pairs": ["Student", "Teacher"]}}], NAMES,
     "[0].DistillationDMLLoss.model_name_pairs: pair 0 must be [student, teacher]"),
    ([{"DistillationDMLLoss": {"model_name_pairs": [["Student", "Student"]]}}], NAMES,
     "[0].DistillationDMLLoss.model_name_pairs: pair 0 names model 'Student' on both sides"),
    ([{"DistillationDMLLoss": {"model_name_pairs": []}}], NAMES,
     "[0].DistillationDMLLoss.model_name_pairs: must be a non-empty list"),
    ([{"DistillationDMLLoss": {"weight": 1.0}}], NAMES,
     "[0].DistillationDMLLoss.model_name_pairs: required option is missing"),
    ([{"CELoss": {"weight": -1}}], None, "[0].CELoss.weight: must be >= 0, got -1"),
    ([{"CELoss": {"weight": "heavy"}}], None, "[0].CELoss.weight: must be a number, got 'heavy'"),
    ([{"DistillationKLDivLoss": {"model_name_pairs": PAIR, "T": 0}}], NAMES,
     "[0].DistillationKLDivLoss.T: must be > 0, got 0"),
    ([{"DistillationDKDLoss": {"model_name_pairs": PAIR, "alpha": -0.5}}], NAMES,
     "[0].DistillationDKDLoss.alpha: must be >= 0, got -0.5"),
    ([{"DistillationDKDLoss": {"model_name_pairs": PAIR, "beta": float("nan")}}], NAMES,
     "[0].DistillationDKDLoss.beta: must be >= 0, got nan"),
    ([{"DistillationDMLLoss": {"model_name_pairs": PAIR, "act": "tanh"}}], NAMES,
     "[0].DistillationDMLLoss.act: must be one of softmax, sigmoid, got 'tanh'"),
    ([{"CELoss": {"epsilon": 1.0}}], None, "[0].CELoss.epsilon: must be < 1, got 1"),
    ([{"CELoss": None, "DistillationDMLLoss": None}], NAMES, "[0]: expected one {LossName: {options}} mapping"),
    ([{"CELoss": [1.0]}], None, "[0].CELoss: expected a mapping of options"),
    ([{"CELoss": {"zzz": 1}}], None, "[0].CELoss.zzz: unknown option (allowed: weight, epsilon, key)"),
    ([{"Zzz": None}], None, "[0].Zzz: unknown loss (known: CELoss, DistillationCELoss,"),
    ([], None, "expected a non-empty list"),
]


@pytest.mark.parametrize(("entries", "names", "message"), BAD)
def test_validate_loss_list_messages(entries, names, message):
    with pytest.raises(ValueError) as info:
        validate_loss_list(entries, names)
    assert str(info.value).startswith(message), str(info.value)


def test_validate_accepts_good_lists_and_build_reports_same_errors():
    good = [{"DistillationDMLLoss": {"weight": 1.0, "model_name_pairs": PAIR}},
            {"DistillationGTCELoss": {"weight": "1e-1", "model_names": ["Student"], "epsilon": 0.1}},
            {"DistillationDKDLoss": {"model_name_pairs": PAIR, "use_target": "teacher"}}]
    validate_loss_list(good, NAMES)
    validate_loss_list([{"CELoss": None}], None)
    validate_loss_list([{"CELoss": {"weight": 1.0}}], ["Student"])
    validate_loss_list([{"CELoss": None}], NAMES)  # Loss.Eval: eval runs the infer model alone
    assert build_loss(good).weights == [1.0, 0.1, 1.0]
    with pytest.raises(ValueError, match=r"^\[0\]\.CELoss\.weight: must be >= 0"):
        build_loss([{"CELoss": {"weight": -2}}])


def test_register_loss_adds_a_config_name():
    from ssld.losses import Loss, register_loss

    @register_loss("TestMeanSquareLogitLoss")
    class MeanSquare(Loss):
        summary = "mean squared logit"

        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.scale = scale

        def forward(self, outputs, labels=None):
            return self.scale * outputs.float().pow(2).mean()

    try:
        with pytest.raises(ValueError, match="registered twice"):
            register_loss("TestMeanSquareLogitLoss")(MeanSquare)
        out = build_loss([{"TestMeanSquareLogitLoss": {"scale": 2.0, "weight": 0.5}}])(torch.ones(2, 3))
        assert out["loss"].item() == 1.0 and out["TestMeanSquareLogitLoss"].item() == 2.0
        validate_loss_list([{"TestMeanSquareLogitLoss": None}], None)
    finally:
        del LOSSES["TestMeanSquareLogitLoss"]
