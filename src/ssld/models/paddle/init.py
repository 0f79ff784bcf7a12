"""PaddleClas's initial weights for the faithful ``paddle_*`` networks, so a run from scratch starts where
PaddleClas's does.

timm initialises these networks its own way, and for a small number of classes that start is far from
PaddleClas's: timm's MobileNetV3 draws the classifier from ``U(±1/sqrt(num_classes))`` (±0.32 for 10 classes,
against Xavier's ±0.07 over 1,280 inputs), and the first steps at a PaddleClas learning rate then blow the
logits up (a 2-epoch Fashion-MNIST distillation ended at 20 % top-1 instead of PaddleClas's 32 %). timm's ResNet
also zeroes the last BN scale of every block, which PaddleClas does not.

Paddle's rules, as its layers and PaddleClas's model files set them:
- ``Conv2D`` without an initializer: ``N(0, sqrt(2 / (k_h * k_w * in_channels)))`` over ALL input channels,
  grouped or not (Paddle's default); ``KaimingNormal``: ``N(0, sqrt(2 / fan_in))`` with ``fan_in`` per group;
- ``Linear``: Xavier uniform by default; ResNet-family heads ``U(±1/sqrt(in_features))``; MobileNetV1's
  ``KaimingNormal`` (``fan_in = in_features``);
- biases 0; BatchNorm scale 1, shift 0.
PaddleClas also exempts the BatchNorm parameters of MobileNetV3 and PP-LCNet from weight decay
(``L2Decay(0.0)``); those parameters carry ``no_weight_decay = True``, which ssld's optimizer honours.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from torch import nn

LinearRule = Literal["xavier", "uniform", "kaiming"]


def paddle_default_conv_(conv: nn.Conv2d) -> None:
    """Paddle's ``Conv2D`` default: normal with std ``sqrt(2 / (k_h * k_w * in_channels))`` (all input channels)."""
    fan = conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan))


def kaiming_conv_(conv: nn.Conv2d) -> None:
    """Paddle's ``KaimingNormal``: normal with std ``sqrt(2 / fan_in)``, ``fan_in`` per group (as torch's)."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")


def _linear_(linear: nn.Linear, rule: LinearRule, scale: float) -> None:
    if rule == "xavier":
        nn.init.xavier_uniform_(linear.weight, gain=scale)
    elif rule == "uniform":
        bound = scale / math.sqrt(linear.in_features)
        nn.init.uniform_(linear.weight, -bound, bound)
    else:
        nn.init.normal_(linear.weight, 0.0, scale * math.sqrt(2.0 / linear.in_features))


def init_like_paddle(
    model: nn.Module,
    linear: LinearRule,
    kaiming: Callable[[str, nn.Conv2d], bool] | None = None,
    bn_no_weight_decay: bool = False,
    linear_scale: float = 1.0,
) -> nn.Module:
    """Re-initialise ``model`` by Paddle's rules (module docstring); ``kaiming(name, conv)`` picks the convs that
    PaddleClas gives ``KaimingNormal``, the others get Paddle's default. ``linear_scale`` is ``1 - p`` where a
    Paddle ``downscale_in_infer`` dropout of rate ``p`` sits before the classifier: timm's dropout rescales by
    ``1 / (1 - p)`` in training, so the same training-time logits need the weights ``(1 - p)`` times Paddle's
    (the factor weight conversion folds in too). Returns ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            (kaiming_conv_ if kaiming is not None and kaiming(name, module) else paddle_default_conv_)(module)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            _linear_(module, linear, linear_scale)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if bn_no_weight_decay:
                module.weight.no_weight_decay = True
                module.bias.no_weight_decay = True
    return model
