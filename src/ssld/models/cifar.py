"""Small-image (28-32 px) classifiers registered into timm: CIFAR-style ResNets and wide ResNets.

Importing this module registers ``cifar_resnet8`` ... ``cifar_resnet110``, ``cifar_resnet8x4``, ``cifar_resnet32x4``,
``cifar_resnet8x0_5``, ``cifar_resnet8x0_25``, ``cifar_wrn_16_2``, ``cifar_wrn_40_2``, ``cifar_wrn_16_4`` and
``cifar_resnet_tiny`` with ``timm.create_model``.
The ``cifar_`` prefix keeps them clear of timm's own names; ``ssld.models.names`` maps the short names users write
(``resnet20``, ``resnet8x4``, ``wrn_40_2``) onto them while timm has no model of that name.

Layout (He et al. 2016, CIFAR section; the ``x4`` and WRN widths follow the CRD/DKD distillation benchmarks): a
3x3 stem, three stages of basic blocks at strides 1/2/2 (28 and 32 px inputs both work: the head is a global
average pool), a projection shortcut (1x1 conv + BN) where shape changes, then global pool, dropout and ``fc``.
The WRNs use pre-activation blocks (BN-ReLU-conv) with a final BN-ReLU. The forward path is plain tensor code so
the nets script, trace and export to ONNX.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

__all__ = ["SMALL_IMAGE_ARCHS", "CifarResNet"]

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)

# short name -> architecture: blocks per stage, stage widths, stem width, pre-activation blocks (WRN)
SMALL_IMAGE_ARCHS: dict[str, dict[str, Any]] = {
    **{
        f"resnet{d}": {"blocks": (d - 2) // 6, "widths": (16, 32, 64), "stem_width": 16, "preact": False}
        for d in (8, 14, 20, 32, 44, 56, 110)
    },
    # half width: about 20k parameters, a student well below a ResNet-20 teacher on small datasets
    "resnet8x0_5": {"blocks": 1, "widths": (8, 16, 32), "stem_width": 8, "preact": False},
    "resnet14x0_5": {"blocks": 2, "widths": (8, 16, 32), "stem_width": 8, "preact": False},
    # quarter width: about 5k parameters, 52x smaller than ResNet-20; too small to reach its teacher from
    # 2,000 labels alone, which is the regime SSLD is for (resnet_tiny is the same network)
    "resnet8x0_25": {"blocks": 1, "widths": (4, 8, 16), "stem_width": 4, "preact": False},
    "resnet8x4": {"blocks": 1, "widths": (64, 128, 256), "stem_width": 32, "preact": False},
    "resnet32x4": {"blocks": 5, "widths": (64, 128, 256), "stem_width": 32, "preact": False},
    "wrn_16_2": {"blocks": 2, "widths": (32, 64, 128), "stem_width": 16, "preact": True},
    "wrn_40_2": {"blocks": 6, "widths": (32, 64, 128), "stem_width": 16, "preact": True},
    "wrn_16_4": {"blocks": 2, "widths": (64, 128, 256), "stem_width": 16, "preact": True},
    "resnet_tiny": {"blocks": 1, "widths": (4, 8, 16), "stem_width": 4, "preact": False},
}


def _conv3x3(in_chs: int, out_chs: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_chs, out_chs, 3, stride=stride, padding=1, bias=False)


def _projection(in_chs: int, out_chs: int, stride: int, with_bn: bool) -> nn.Module:
    conv = nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_chs)) if with_bn else conv


class BasicBlock(nn.Module):
    """Post-activation basic block: conv-BN-ReLU-conv-BN, plus shortcut, then ReLU."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, drop_path: float = 0.0) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_chs, out_chs, stride)
        self.bn1 = nn.BatchNorm2d(out_chs)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_chs, out_chs)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.act2 = nn.ReLU(inplace=True)
        self.downsample = (
            _projection(in_chs, out_chs, stride, with_bn=True) if stride != 1 or in_chs != out_chs else nn.Identity()
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(self.drop_path(out) + self.downsample(x))


class PreActBlock(nn.Module):
    """Pre-activation (WRN) block: BN-ReLU-conv-BN-ReLU-conv; a projection sees the activated input."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, drop_path: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.act1 = nn.ReLU(inplace=True)
        self.conv1 = _conv3x3(in_chs, out_chs, stride)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.act2 = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_chs, out_chs)
        self.project = stride != 1 or in_chs != out_chs
        self.downsample = _projection(in_chs, out_chs, stride, with_bn=False) if self.project else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        shortcut = self.downsample(pre) if self.project else x
        out = self.conv2(self.act2(self.bn2(self.conv1(pre))))
        return self.drop_path(out) + shortcut


class CifarResNet(nn.Module):
    """A 3-stage ResNet for small images with timm's classifier interface (``forward_features``/``forward_head``)."""

    def __init__(
        self,
        blocks: int,
        widths: tuple[int, int, int],
        stem_width: int,
        preact: bool = False,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        global_pool: str = "avg",
    ) -> None:
        super().__init__()
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '' for small-image ResNets, got {global_pool!r}")
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.global_pool = global_pool
        self.conv1 = _conv3x3(in_chans, stem_width)
        self.bn1: nn.Module = nn.Identity() if preact else nn.BatchNorm2d(stem_width)
        self.act1: nn.Module = nn.Identity() if preact else nn.ReLU(inplace=True)
        block_cls = PreActBlock if preact else BasicBlock
        total = 3 * blocks
        in_chs, idx = stem_width, 0
        self.feature_info = [{"num_chs": stem_width, "reduction": 1, "module": "act1"}]
        for stage, (width, stride) in enumerate(zip(widths, (1, 2, 2), strict=True)):
            layers = []
            for b in range(blocks):
                dpr = drop_path_rate * idx / max(total - 1, 1)
                layers.append(block_cls(in_chs, width, stride if b == 0 else 1, dpr))
                in_chs, idx = width, idx + 1
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layers))
            self.feature_info.append({"num_chs": width, "reduction": 2**stage, "module": f"layer{stage + 1}"})
        self.final_norm: nn.Module = (
            nn.Sequential(nn.BatchNorm2d(in_chs), nn.ReLU(inplace=True)) if preact else nn.Identity()
        )
        self.num_features = self.head_hidden_size = in_chs
        self.fc: nn.Module = nn.Linear(in_chs, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for timm's layer-decay / ``group_parameters``: stem, then stages (or blocks)."""
        return {"stem": r"^conv1|bn1", "blocks": r"^layer(\d+)" if coarse else r"^layer(\d+)\.(\d+)"}

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier (``num_classes=0`` leaves the pooled features)."""
        if global_pool is not None:
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.final_norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "avg":
            x = x.mean((2, 3))
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "url": "", "num_classes": 10, "input_size": (3, 32, 32), "pool_size": (8, 8), "crop_pct": 1.0,
        "interpolation": "bilinear", "mean": CIFAR_MEAN, "std": CIFAR_STD, "first_conv": "conv1", "classifier": "fc",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({f"cifar_{short}": _cfg() for short in SMALL_IMAGE_ARCHS})


def _register(short: str, arch: dict[str, Any]) -> None:
    name = f"cifar_{short}"

    def entrypoint(pretrained: bool = False, **kwargs: Any) -> CifarResNet:
        return build_model_with_cfg(CifarResNet, name, pretrained, **{**arch, **kwargs})

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = (
        f"{name}: {3 * arch['blocks']} {'pre-activation' if arch['preact'] else 'basic'} blocks, "
        f"widths {arch['widths']}, for 28-32 px inputs."
    )
    globals()[name] = register_model(entrypoint)


for _short, _arch in SMALL_IMAGE_ARCHS.items():
    _register(_short, _arch)
