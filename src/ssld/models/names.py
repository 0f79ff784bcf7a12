"""Model names: PaddleClas names are aliases of timm names; any timm name (or one of ours) works as is."""

from __future__ import annotations

import difflib

from ssld.errors import UserError

# PaddleClas name -> timm name. Where timm lacks the exact model, the nearest one is used and noted.
PADDLE_ALIASES: dict[str, str] = {
    "ResNet18": "resnet18",
    "ResNet18_vd": "resnet18d",
    "ResNet34": "resnet34",
    "ResNet34_vd": "resnet34d",
    "ResNet50": "resnet50",
    "ResNet50_vd": "resnet50d",
    "ResNet101": "resnet101",
    "ResNet101_vd": "resnet101d",
    "ResNet152": "resnet152",
    "ResNet152_vd": "resnet152d",
    "ResNet200_vd": "resnet200d",
    "ResNeXt50_32x4d": "resnext50_32x4d",
    "ResNeXt101_32x8d_wsl": "resnext101_32x8d.fb_wsl_ig1b_ft_in1k",
    "ResNeXt101_32x16d_wsl": "resnext101_32x16d.fb_wsl_ig1b_ft_in1k",
    "ResNeXt101_32x32d_wsl": "resnext101_32x32d.fb_wsl_ig1b_ft_in1k",
    "Res2Net50_26w_4s": "res2net50_26w_4s",
    "Res2Net50_vd_26w_4s": "res2net50d",
    "Res2Net101_vd_26w_4s": "res2net101d",
    # timm has no Res2Net200_vd_26w_4s; res2net101d is the deepest vd-style Res2Net it ships.
    "Res2Net200_vd_26w_4s": "res2net101d",
    "MobileNetV1": "mobilenetv1_100",
    "MobileNetV1_x0_25": "mobilenetv1_100",  # nearest: timm ships width 1.0 (and 1.25) only
    "MobileNetV2": "mobilenetv2_100",
    "MobileNetV2_x0_5": "mobilenetv2_050",
    "MobileNetV3_large_x1_0": "mobilenetv3_large_100",
    "MobileNetV3_large_x0_75": "mobilenetv3_large_075",
    "MobileNetV3_small_x1_0": "mobilenetv3_small_100",
    "MobileNetV3_small_x0_75": "mobilenetv3_small_075",
    "MobileNetV3_small_x0_5": "mobilenetv3_small_050",
    "EfficientNetB0": "efficientnet_b0",
    "HRNet_W18_C": "hrnet_w18",
    "PPLCNet_x1_0": "lcnet_100",
    "PPLCNet_x0_5": "lcnet_050",
    "PPLCNetV2_base": "lcnet_100",  # nearest: timm has no PP-LCNetV2
    "GhostNet_x1_0": "ghostnet_100",
    "DenseNet121": "densenet121",
    "ViT_base_patch16_224": "vit_base_patch16_224",
    "DeiT_tiny_patch16_224": "deit_tiny_patch16_224",
}


def _known_names() -> list[str]:
    import timm

    from ssld.models.cifar import (
        SMALL_IMAGE_ARCHS,  # importing registers the small-image nets into timm
    )

    return list(SMALL_IMAGE_ARCHS) + list(timm.list_models()) + list(timm.list_models(pretrained=True))


def small_image_alias(name: str) -> str | None:
    """``cifar_<name>`` for a short small-image name (``resnet20``, ``wrn_40_2``) that timm itself does not define.

    A name timm already knows keeps timm's meaning, so an upgrade of timm can never silently swap our net in.
    """
    import timm

    from ssld.models.cifar import SMALL_IMAGE_ARCHS

    arch = name.split(".")[0]
    if arch in SMALL_IMAGE_ARCHS and not timm.is_model(arch):
        return f"cifar_{name}"
    return None


def resolve_model_name(name: str) -> str:
    """Return the timm name for a PaddleClas alias, short small-image name or timm name.

    An unknown name raises ``UserError`` with the closest known names as a suggestion.
    """
    timm_name = PADDLE_ALIASES.get(name) or small_image_alias(name) or name
    import timm

    arch = timm_name.split(".")[0]
    if timm.is_model(arch):
        return timm_name
    candidates = list(PADDLE_ALIASES) + _known_names()
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else " (see `timm.list_models()`)"
    raise UserError(f"unknown model '{name}'{hint}")
