"""PaddleClas networks ported from the PyTorch code timm's come from, with timm's layer names: Twins (PCPVT, SVT),
DLA, StarNet and CSPDarkNet53 (whose classifier is ``fc``, timm's ``head.fc``). Their ``.pdparams`` load into
timm's own networks by name (Paddle's linear weights transposed, batch-norm statistics renamed). TNT has the same
names too but stores its pixel position embedding in another shape: not mapped."""

from __future__ import annotations

from torch import nn

from ssld.models.paddle.convert import Rule, renamed_rules

# timm architecture -> (PaddleClas name, the timm classifier, renames of timm names into PaddleClas's)
_FAMILIES: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    **{f"twins_pcpvt_{s}": (f"pcpvt_{s}", "head", []) for s in ("small", "base", "large")},
    **{f"twins_svt_{s}": (f"alt_gvt_{s}", "head", []) for s in ("small", "base", "large")},
    **{f"dla{n.lower()}": (f"DLA{n}", "fc", []) for n in ("34", "46_c", "46x_c", "60", "60x", "60x_c", "102", "102x",
                                                          "102x2", "169")},
    **{f"starnet_s{i}": (f"StarNet_S{i}", "head", []) for i in range(1, 5)},
    "cspdarknet53": ("CSPDarkNet53", "head.fc", [(r"^head\.fc$", "fc")]),
}


def _rules(model: nn.Module) -> list[Rule]:
    _, head, subs = _FAMILIES[str(model.pretrained_cfg["architecture"])]
    return renamed_rules(model, subs, head)


RULES = dict.fromkeys(_FAMILIES, _rules)
# PaddleClas name -> timm name
ALIASES = {paddle: arch for arch, (paddle, _, _) in _FAMILIES.items()}
