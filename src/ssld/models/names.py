"""Model names: PaddleClas names are aliases of timm names; any timm name (or one of ours) works as is.

A PaddleClas name resolves to a network that computes what PaddleClas's does (so its ``.pdparams`` weights load,
:mod:`ssld.models.paddle`): timm's own where it matches, else a faithful ``paddle_*`` variant. The few names timm
has no such network for resolve to a stand-in listed in ``NEAREST``, with a notice naming both networks.
"""

from __future__ import annotations

import difflib
import logging

from ssld.errors import UserError
from ssld.models.paddle.mobilenet import ALIASES as _MOBILE_ALIASES
from ssld.models.paddle.ported import ALIASES as _PORTED_ALIASES

# PaddleClas names of the faithful networks in ssld.models.paddle (timm's same-named nets compute otherwise).
PADDLE_FAITHFUL: dict[str, str] = {**_MOBILE_ALIASES, **_PORTED_ALIASES}

log = logging.getLogger("ssld.models")

# PaddleClas name -> timm name.
PADDLE_ALIASES: dict[str, str] = {
    "ResNet18": "paddle_resnet18",
    "ResNet18_vd": "paddle_resnet18_vd",
    "ResNet34": "paddle_resnet34",
    "ResNet34_vd": "paddle_resnet34_vd",
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
        "EfficientNetB0": "efficientnet_b0",
    "HRNet_W18_C": "hrnet_w18",
    "GhostNet_x1_0": "ghostnet_100",
    "DenseNet121": "densenet121",
    "ViT_base_patch16_224": "vit_base_patch16_224",
    "DeiT_tiny_patch16_224": "deit_tiny_patch16_224",
    **PADDLE_FAITHFUL,
}


# PaddleClas names whose network neither timm nor ssld has: the stand-in is another network (a notice says so).
NEAREST: dict[str, str] = {
    "Res2Net200_vd_26w_4s": "res2net101d",
}
_noticed: set[str] = set()


def paddle_names_for(timm_names: list[str]) -> list[str]:
    """The PaddleClas names (else the timm names themselves) that resolve to ``timm_names``."""
    by_timm: dict[str, str] = {}
    for paddle_name, timm_name in PADDLE_ALIASES.items():
        if paddle_name not in NEAREST:
            by_timm.setdefault(timm_name, paddle_name)
    return [by_timm.get(t, t) for t in timm_names]


def _notice_nearest(name: str) -> None:
    if name in NEAREST and name not in _noticed:
        _noticed.add(name)
        log.warning(
            "model '%s': no faithful network for it here; using '%s' instead, a different network "
            "(PaddleClas weights for '%s' will not load into it)", name, NEAREST[name], name
        )


def _register() -> None:
    """Import the modules that register ssld's networks into timm."""
    import ssld.models.cifar
    import ssld.models.paddle  # noqa: F401


def _known_names() -> list[str]:
    import timm

    from ssld.models.cifar import SMALL_IMAGE_ARCHS

    _register()

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
    _register()
    _notice_nearest(name)
    timm_name = PADDLE_ALIASES.get(name) or NEAREST.get(name) or small_image_alias(name) or name
    import timm

    arch = timm_name.split(".")[0]
    if timm.is_model(arch):
        return timm_name
    candidates = list(PADDLE_ALIASES) + _known_names()
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else " (see `timm.list_models()`)"
    raise UserError(f"unknown model '{name}'{hint}")
