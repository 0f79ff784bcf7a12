"""Model names: PaddleClas names are aliases of timm names; any timm name (or one of ours) works as is.

The PaddleClas names in ``PADDLE_FAITHFUL`` resolve to networks checked to compute what PaddleClas's do (so its
``.pdparams`` weights load, :mod:`ssld.models.paddle`): timm's own where it matches, else a faithful ``paddle_*``
variant. The other aliases (``TIMM_NAMES``) name timm's network of the same design; ``.pdparams`` files do not
load into them.
"""

from __future__ import annotations

import difflib

from ssld.errors import UserError
from ssld.models.paddle.hrnet import ALIASES as _HRNET_ALIASES
from ssld.models.paddle.mobilenet import ALIASES as _MOBILE_ALIASES
from ssld.models.paddle.ported import ALIASES as _PORTED_ALIASES
from ssld.models.paddle.resnet import ALIASES as _RESNET_ALIASES
from ssld.models.paddle.resnext import ALIASES as _RESNEXT_ALIASES
from ssld.models.paddle.same_names import ALIASES as _SAME_NAME_ALIASES
from ssld.models.paddle.timm_names import TIMM_NAMES, no_equivalent
from ssld.models.paddle.transformers import ALIASES as _TRANSFORMER_ALIASES

# PaddleClas names of the faithful networks in ssld.models.paddle (timm's same-named nets compute otherwise).
PADDLE_FAITHFUL: dict[str, str] = {**_RESNET_ALIASES, **_MOBILE_ALIASES, **_PORTED_ALIASES, **_RESNEXT_ALIASES,
                                   **_HRNET_ALIASES, **_TRANSFORMER_ALIASES,
                                   **_SAME_NAME_ALIASES}

# PaddleClas name -> timm name: timm's networks of the same design (ssld.models.paddle.timm_names), then the
# faithful ones (which win where both name a network).
PADDLE_ALIASES: dict[str, str] = {**TIMM_NAMES, **PADDLE_FAITHFUL}


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
    timm_name = PADDLE_ALIASES.get(name) or small_image_alias(name) or name
    import timm

    arch = timm_name.split(".")[0]
    if timm.is_model(arch):
        return timm_name
    reason = no_equivalent(name)
    if reason:
        raise UserError(f"unknown model '{name}': {reason}")
    candidates = list(PADDLE_ALIASES) + _known_names()
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else " (see `timm.list_models()`)"
    raise UserError(f"unknown model '{name}'{hint}")
