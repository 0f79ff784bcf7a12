"""Shared pieces of every loss: option checks, picking logits out of model outputs, fp32 math, KL and hard CE.

Every loss computes in float32 with autocast switched off, whatever precision the model ran in, and uses
log-softmax (never ``log(softmax)``), so fp16/bf16 training with large logits stays finite.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

Outputs = Tensor | Mapping[str, Any]


class LossOptionError(ValueError):
    """A bad loss option; ``key`` names it so the registry can report ``[i].Name.key: message``."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def number(key: str, value: Any, *, low: float = 0.0, strict: bool = False, below: float = math.inf) -> float:
    """A finite number in [low, below) ((low, below) when ``strict``); numeric strings like YAML's '1e-3' work."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise LossOptionError(key, f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LossOptionError(key, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise LossOptionError(key, f"must be {'>' if strict else '>='} {low:g}, got {value:g}")
    if value >= below:
        raise LossOptionError(key, f"must be < {below:g}, got {value:g}")
    return value


def resolve_T(T: Any, temperature: Any, default: float) -> float:
    """``T``, or PaddleClas's spelling ``temperature``; giving both is an error."""
    if T is not None and temperature is not None:
        raise LossOptionError("temperature", "give either T or temperature (its PaddleClas name), not both")
    if temperature is not None:
        return number("temperature", temperature, strict=True)
    return number("T", default if T is None else T, strict=True)


def choice(key: str, value: Any, options: Sequence[str]) -> str:
    if value not in options:
        raise LossOptionError(key, f"must be one of {', '.join(options)}, got {value!r}")
    return value


def flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise LossOptionError(key, f"must be true or false, got {value!r}")
    return value


def model_pairs(key: str, value: Any) -> list[tuple[str, str]]:
    """``[[student, teacher], ...]``: a non-empty list of pairs of two different model names."""
    if not isinstance(value, (list, tuple)) or not value:
        raise LossOptionError(key, f"must be a non-empty list of [student, teacher] pairs, got {value!r}")
    pairs = []
    for i, pair in enumerate(value):
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not all(isinstance(n, str) and n for n in pair)):
            raise LossOptionError(key, f"pair {i} must be [student, teacher] (two model names), got {pair!r}")
        if pair[0] == pair[1]:
            raise LossOptionError(key, f"pair {i} names model {pair[0]!r} on both sides")
        pairs.append((pair[0], pair[1]))
    return pairs


def model_list(key: str, value: Any) -> list[str]:
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(n, str) and n for n in value)):
        raise LossOptionError(key, f"must be a non-empty list of model names, got {value!r}")
    return list(value)


def optional_key(value: Any) -> str | None:
    if value is not None and not (isinstance(value, str) and value):
        raise LossOptionError("key", f"must be the name of an output entry such as 'logits', got {value!r}")
    return value


def pick(outputs: Outputs, model: str | None, key: str | None, loss: str, logits: bool = True) -> Tensor:
    """The logits of ``model`` (None: a plain tensor or the only model); a dict output is indexed by ``key``.

    ``logits=False`` accepts any tensor shape (a feature map picked by ``key``)."""
    if model is None and isinstance(outputs, Mapping) and (key or "logits") not in outputs:
        if len(outputs) != 1:
            raise ValueError(f"{loss}: outputs hold several models ({', '.join(map(str, outputs))}); "
                             "use DistillationGTCELoss with model_names to choose one")
        model = next(iter(outputs))
    if model is not None:
        if not isinstance(outputs, Mapping):
            raise ValueError(f"{loss}: needs the outputs of model {model!r}, got a single tensor")
        if model not in outputs:
            raise ValueError(f"{loss}: outputs have no model {model!r} (have: {', '.join(map(str, outputs))})")
        outputs = outputs[model]
    if isinstance(outputs, Mapping):
        k = key or "logits"
        if k not in outputs:
            raise ValueError(f"{loss}: output has no entry {k!r} (have: {', '.join(map(str, outputs))})")
        outputs = outputs[k]
    elif key not in (None, "logits"):
        raise ValueError(f"{loss}: key {key!r} names a feature output, but {model or 'the model'} returns its "
                         "logits only (give it return_patterns)")
    if not logits and isinstance(outputs, Tensor):
        return outputs
    if not isinstance(outputs, Tensor) or outputs.dim() != 2:
        raise ValueError(f"{loss}: expected logits of shape [batch, classes], got {_shape(outputs)}")
    return outputs


def _shape(x: Any) -> str:
    return str(tuple(x.shape)) if isinstance(x, Tensor) else type(x).__name__


def fp32_region(x: Tensor) -> AbstractContextManager:
    """Autocast off for the tensor's device, so the loss math really runs in float32."""
    dev = x.device.type
    return torch.autocast(dev, enabled=False) if torch.amp.is_autocast_available(dev) else nullcontext()


def at_least_fp32(x: Tensor) -> Tensor:
    """fp16/bf16 (and integer) logits as float32; float32/float64 stay as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def kl_rows(log_p: Tensor, log_q: Tensor) -> Tensor:
    """Per-row KL(p‖q) = Σ p·(log p − log q) from log-probabilities.

    Classes with p = 0 (log p = −inf, e.g. a masked class) count 0 and are zeroed before the subtraction, so
    −inf − (−inf) never makes a NaN value or gradient; tiny negative row sums from rounding are clamped (KL ≥ 0).
    """
    p = log_p.exp()
    skip = p == 0
    terms = p * (log_p.masked_fill(skip, 0.0) - log_q.masked_fill(skip, 0.0))
    return terms.sum(-1).clamp_min(0.0)


def flat_labels(labels: Tensor | None, batch: int, loss: str) -> Tensor:
    """Hard labels as a 1-D LongTensor of length ``batch`` ([B] or [B, 1] accepted)."""
    if labels is None:
        raise ValueError(f"{loss}: needs labels (use -1 for unlabeled samples)")
    labels = torch.as_tensor(labels)
    if labels.dim() == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.dim() != 1 or labels.shape[0] != batch or labels.is_floating_point():
        raise ValueError(f"{loss}: expected {batch} integer labels, got {labels.dtype} {tuple(labels.shape)}")
    return labels.long()


def hard_ce(logits: Tensor, labels: Tensor | None, epsilon: float, loss: str) -> Tensor:
    """Mean cross-entropy over the labeled rows (label ≥ 0); label smoothing ε mixes the one-hot with uniform.

    Soft targets (a float [B, C] tensor of probabilities, e.g. from mixup) are also accepted and smoothed the
    same way. With no labeled row the result is a zero still connected to ``logits``, so backward works.
    """
    with fp32_region(logits):
        log_p = torch.log_softmax(at_least_fp32(logits), dim=-1)
        if isinstance(labels, Tensor) and labels.is_floating_point() and labels.shape == logits.shape:
            target = (1.0 - epsilon) * labels.to(log_p.dtype) + epsilon / logits.shape[1]
            return -(target * log_p).sum(-1).mean()
        labels = flat_labels(labels, logits.shape[0], loss).to(logits.device)
        keep = labels >= 0
        log_p = log_p[keep]
        nll = -log_p.gather(1, labels[keep, None])[:, 0]
        if epsilon > 0:
            nll = (1.0 - epsilon) * nll - epsilon * log_p.mean(-1)
        return nll.sum() / keep.sum().clamp_min(1)


class Loss(nn.Module):
    """A registered loss: ``forward(outputs, labels) -> scalar``; ``describe()`` is its one-line summary."""

    distillation: ClassVar[bool] = False
    summary: ClassVar[str] = ""

    def describe(self, weight: float | None = None) -> str:
        """E.g. "DistillationDMLLoss (symmetric KL, 'JS divergence' in the reference) weight 1.0 on S<-T"."""
        w = "" if weight is None else f" weight {float(weight)}"
        return f"{type(self).__name__} ({self.summary}{self.details()}){w}{self.applies_to()}"

    def details(self) -> str:
        """Options worth reporting, as ", T=4"-style text."""
        return ""

    def applies_to(self) -> str:
        """Which models the loss reads, as " on Student<-Teacher"-style text."""
        return ""

    def referenced_models(self) -> tuple[str, list[tuple[str, str]]]:
        """The option naming models and its (position, model name) items, for checks against Arch.models."""
        return "", []


class PairLoss(Loss, ABC):
    """A loss between student and teacher logits, summed over ``model_name_pairs`` and averaged over the batch.

    The gradient reaches whichever side trains: a frozen teacher runs under ``no_grad``, so only the student
    learns; when both models train (``freeze_params_list: [False, False]``, PaddleClas's mutual learning, e.g. its
    DML configs) the loss trains both, as in PaddleClas.
    """

    distillation = True
    logits_only: ClassVar[bool] = True  # False: ``key`` may pick a feature map of any shape

    def __init__(self, model_name_pairs: Any, key: str | None = None) -> None:
        super().__init__()
        self.model_name_pairs = model_pairs("model_name_pairs", model_name_pairs)
        self.key = optional_key(key)

    @abstractmethod
    def pair(self, student: Tensor, teacher: Tensor, labels: Tensor | None) -> Tensor:
        """The batch-mean loss for one pair; inputs are float32 (or float64)."""

    def forward(self, outputs: Outputs, labels: Tensor | None = None) -> Tensor:
        name = type(self).__name__
        total: Tensor | None = None
        for s_name, t_name in self.model_name_pairs:
            s = pick(outputs, s_name, self.key, name, self.logits_only)
            t = pick(outputs, t_name, self.key, name, self.logits_only)
            if s.shape != t.shape:
                raise ValueError(f"{name}: {s_name} logits {tuple(s.shape)} and {t_name} logits "
                                 f"{tuple(t.shape)} differ in shape")
            with fp32_region(s):
                part = self.pair(at_least_fp32(s), at_least_fp32(t), labels)
            total = part if total is None else total + part
        assert total is not None  # model_pairs() guarantees at least one pair
        return total

    def referenced_models(self) -> tuple[str, list[tuple[str, str]]]:
        return "model_name_pairs", [(f"pair {j}", n) for j, p in enumerate(self.model_name_pairs) for n in p]

    def applies_to(self) -> str:
        return " on " + ", ".join(f"{s}<-{t}" for s, t in self.model_name_pairs)
