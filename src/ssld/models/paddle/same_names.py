"""PaddleClas networks whose ``.pdparams`` load into timm's own networks by renaming layers (Paddle's linear
weights transposed, batch-norm statistics renamed, nothing computed otherwise).

Ports of the PyTorch code timm's come from: Twins (PCPVT, SVT), DLA, StarNet and CSPDarkNet53 keep timm's layer
names (CSPDarkNet53's classifier is ``fc``, timm's ``head.fc``); ConvNeXt, RepVGG (not D2se, whose squeeze-excite is
not mapped) and PVTv2 keep the original code's names, renamed here as timm's own converters do. DenseNet has
PaddleClas's own names. TNT keeps timm's names too but stores its pixel position embedding in another shape: not
mapped."""

from __future__ import annotations

from torch import nn

from ssld.models.paddle.convert import Rule, renamed_rules

# ConvNeXt keeps the original code's names: downsampling layers apart from the stages, blocks numbered in them
_CONVNEXT = [(r"^stem\.", "downsample_layers.0."), (r"^stages\.(\d)\.downsample\.", r"downsample_layers.\1."),
             (r"\.blocks\.(\d+)\.", r".\1."), (r"\.conv_dw$", ".dwconv"), (r"\.mlp\.fc1$", ".pwconv1"),
             (r"\.mlp\.fc2$", ".pwconv2"), (r"^head\.norm$", "norm"), (r"^head\.fc$", "head")]
# RepVGG: the original code's stage and branch names (timm's byobnet names its branches conv_kxk, conv_1x1, identity)
_REPVGG = [(r"^stem\.", "stage0."), (r"^stages\.(\d)\.", lambda m: f"stage{int(m.group(1)) + 1}."),
           (r"\.conv_kxk\.", ".rbr_dense."), (r"\.conv_1x1\.", ".rbr_1x1."), (r"\.identity$", ".rbr_identity"),
           (r"^head\.fc$", "linear")]
# PVTv2: the original code's per-stage names (patch_embed<n>, block<n>, norm<n>), as timm's own converter maps them
_PVT_V2 = [(r"^patch_embed\.", "patch_embed1."),
           (r"^stages\.(\d)\.downsample\.", lambda m: f"patch_embed{int(m.group(1)) + 1}."),
           (r"^stages\.(\d)\.blocks\.(\d+)\.", lambda m: f"block{int(m.group(1)) + 1}.{m.group(2)}."),
           (r"^stages\.(\d)\.norm$", lambda m: f"norm{int(m.group(1)) + 1}"), (r"\.mlp\.dwconv$", ".mlp.dwconv.dwconv")]
# DenseNet: PaddleClas's own names (dense block b's layer l: db_conv_<b+1>.conv<b+1>_<l>, its BN-ReLU-conv pairs
# bn_ac_func1/2; transitions tr_conv<b+1>_blk)
_DENSENET = [
    (r"^features\.conv0$", "conv1_func._conv"), (r"^features\.norm0$", "conv1_func._batch_norm"),
    (r"^features\.denseblock(\d)\.denselayer(\d+)\.(norm|conv)(\d)$",
     lambda m: f"db_conv_{int(m.group(1)) + 1}.conv{int(m.group(1)) + 1}_{m.group(2)}.bn_ac_func{m.group(4)}."
               + ("_batch_norm" if m.group(3) == "norm" else "_conv")),
    (r"^features\.transition(\d)\.(norm|conv)$",
     lambda m: f"tr_conv{int(m.group(1)) + 1}_blk.conv_ac_func." + ("_batch_norm" if m.group(2) == "norm" else "_conv")),
    (r"^features\.norm5$", "batch_norm"), (r"^classifier$", "out")]
# timm architecture -> (PaddleClas name, the timm classifier, renames of timm names into PaddleClas's)
_FAMILIES: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    **{f"twins_pcpvt_{s}": (f"pcpvt_{s}", "head", []) for s in ("small", "base", "large")},
    **{f"twins_svt_{s}": (f"alt_gvt_{s}", "head", []) for s in ("small", "base", "large")},
    **{f"dla{n.lower()}": (f"DLA{n}", "fc", []) for n in ("34", "46_c", "46x_c", "60", "60x", "60x_c", "102", "102x",
                                                          "102x2", "169")},
    **{f"starnet_s{i}": (f"StarNet_S{i}", "head", []) for i in range(1, 5)},
    "cspdarknet53": ("CSPDarkNet53", "head.fc", [(r"^head\.fc$", "fc")]),
    **{f"convnext_{s}": (p, "head.fc", _CONVNEXT) for s, p in (("tiny", "ConvNeXt_tiny"), ("small", "ConvNeXt_small"),
                                                                ("base", "ConvNeXt_base_224"),
                                                                ("large", "ConvNeXt_large_224"))},
    **{f"repvgg_{v.lower()}": (f"RepVGG_{v}", "head.fc", _REPVGG) for v in ("A0", "A1", "A2", "B0", "B1", "B1g4",
                                                                             "B2", "B2g4", "B3", "B3g4")},
    **{f"pvt_v2_b{i}": (f"PVT_V2_B{i}", "head", _PVT_V2) for i in range(6)},
    "pvt_v2_b2_li": ("PVT_V2_B2_Linear", "head", _PVT_V2),
    **{f"densenet{n}": (f"DenseNet{n}", "classifier", _DENSENET) for n in (121, 161, 169, 201)},
}


def _rules(model: nn.Module) -> list[Rule]:
    _, head, subs = _FAMILIES[str(model.pretrained_cfg["architecture"])]
    return renamed_rules(model, subs, head)


RULES = dict.fromkeys(_FAMILIES, _rules)
# PaddleClas name -> timm name
ALIASES = {paddle: arch for arch, (paddle, _, _) in _FAMILIES.items()} | {
    "ConvNeXt_base_384": "convnext_base", "ConvNeXt_large_384": "convnext_large"}  # the same networks at 384 px
