"""PaddleClas model names that are timm's networks of the same design: ``VGG16`` builds timm's ``vgg16``.

Each pair was checked by building both with 1,000 classes and counting trainable parameters
(``benchmarks/paddle_timm_names.py``, PaddleClas 2.6.0's definitions; docs/paddle_weights.md has the table): equal
for most, within 0.1 % for VGG, ResNeSt and GhostNet (small differences in heads and SE blocks); TinyNet
equal with the ``depth_trunc: round`` its PaddleClas configs set (ssld refuses ``ceil``, PaddleClas's default,
which timm's TinyNets do not build). Names whose timm namesake is another design are left out (PaddleClas's ``ViT_small_patch16_224`` is 8 blocks wide, timm's 12
narrow ones; its ``LeViT`` and ``Xception41`` differ too), as are PaddleClas networks timm does not have (HarDNet,
VAN, CSWin, RedNet...): their names are refused in one line that says so (``NO_TIMM_EQUIVALENT``).

These networks train and distil as any timm model; PaddleClas's ``.pdparams`` files do not load into them (their
parameter names are not mapped): the faithful networks of :mod:`ssld.models.paddle` are the ones that load.
"""

from __future__ import annotations

_REGNETX = {"200MF": "002", "400MF": "004", "600MF": "006", "800MF": "008", "1600MF": "016", "3200MF": "032",
            "4GF": "040", "6400MF": "064", "8GF": "080", "12GF": "120", "16GF": "160", "32GF": "320"}

# PaddleClas name -> timm name
TIMM_NAMES: dict[str, str] = {
    **{f"VGG{n}": f"vgg{n}" for n in (11, 13, 16, 19)},
    **{f"DPN{n}": f"dpn{n}" for n in (68, 92, 98, 107, 131)},
    "InceptionV3": "inception_v3", "InceptionV4": "inception_v4",
    "Xception41_deeplab": "xception41", "Xception65_deeplab": "xception65",
    **{f"RegNetX_{k}": f"regnetx_{v}" for k, v in _REGNETX.items()},
    "RepVGG_D2se": "repvgg_d2se",
    "ResNeSt50": "resnest50d", "ResNeSt101": "resnest101e", "ResNeSt200": "resnest200e", "ResNeSt269": "resnest269e",
    **{f"ReXNet_{k}": f"rexnet_{k.replace('_', '')}0" for k in ("1_0", "1_3", "1_5", "2_0", "3_0")},
    **{f"SwinTransformerV2_{s}_patch4_window{w}_256": f"swinv2_{s}_window{w}_256" for s in ("tiny", "small", "base")
       for w in (8, 16)},
    "TNT_small": "tnt_s_patch16_224", "TNT_base": "tnt_b_patch16_224",
    **{f"MixNet_{s}": f"mixnet_{s.lower()}" for s in "SML"},
    "GhostNet_x0_5": "ghostnet_050", "GhostNet_x1_0": "ghostnet_100", "GhostNet_x1_3": "ghostnet_130",
    **{f"MobileViT_{s}": f"mobilevit_{s.lower()}" for s in ("S", "XS", "XXS")},
    **{f"MobileViTV2_x{k}": f"mobilevitv2_{v}" for k, v in {"0_5": "050", "1_0": "100", "1_5": "150",
                                                             "2_0": "200"}.items()},
    # PaddleClas's EfficientNet pads like TensorFlow (SAME) with BN epsilon 1e-3: timm's tf_ variants
    **{f"EfficientNetB{i}": f"tf_efficientnet_b{i}" for i in range(8)},
    "EfficientNetV2_S": "efficientnetv2_s", "Res2Net50_14w_8s": "res2net50_14w_8s",
    "DarkNet53": "darknet53",
    "SE_ResNeXt50_32x4d": "seresnext50_32x4d", "SE_ResNeXt101_32x4d": "seresnext101_32x4d",
    **{f"FasterNet_{s}": f"fasternet_{s.lower()}" for s in ("T0", "T1", "T2", "S", "M", "L")},
    **{f"MobileNetV4_{s}": f"mobilenetv4_{s}" for s in ("conv_small", "conv_medium", "conv_large", "hybrid_medium",
                                                         "hybrid_large")},
    **{f"TinyNet_{s}": f"tinynet_{s.lower()}" for s in "ABCDE"},
    **{f"NextViT_{s}_{r}": f"nextvit_{s}" for s in ("small", "base", "large") for r in (224, 384)},
}

# PaddleClas designs timm has no network of (name prefixes), with what timm has of that name where it differs
NO_TIMM_EQUIVALENT: dict[str, str] = {
    **dict.fromkeys(("AlexNet", "CSWinTransformer", "CvT", "DSNet", "ESNet", "GoogLeNet", "HarDNet", "MicroNet",
                     "MobileNeXt", "MobileViTV3", "PeleeNet", "RedNet", "ShuffleNetV2", "SqueezeNet", "UniFormer",
                     "VAN_", "DenseNet264", "RepVGG_B1g2", "ResNeSt50_fast", "ResNeXt101_32x48d_wsl",
                     "SwinTransformerV2_large", "SwinTransformerV2_base_patch4_window24"), ""),
    "LeViT": "timm's levit_* have 2-5 % more parameters",
    "ViT_small_patch16_224": "timm's vit_small_patch16_224 is 12 blocks of width 384, PaddleClas's 8 of 768",
    "Xception": "timm's xception41/65/71 are the DeepLab variants, PaddleClas's Xception*_deeplab",
}


def no_equivalent(name: str) -> str | None:
    """Why a PaddleClas name has no timm network here (a sentence), or None when it is not one of those."""
    for prefix, note in NO_TIMM_EQUIVALENT.items():
        if name.startswith(prefix):
            return (f"PaddleClas's {name} has no network of the same design in timm" + (f" ({note})" if note else "")
                    + "; give a timm model name (`timm.list_models()`) or one of the PaddleClas names in "
                    "docs/paddle_weights.md")
    return None
