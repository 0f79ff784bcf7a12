"""Convert a PaddleClas ``.pdparams`` file into a timm ``.safetensors`` file (``ssld convert``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ssld.errors import UserError


@dataclass(frozen=True)
class Converted:
    """What ``convert_file`` wrote: the PaddleClas and timm names, classes, array and parameter counts."""

    paddle_name: str
    timm_name: str
    num_classes: int
    arrays: int
    parameters: int
    out: Path


def guess_paddle_name(path: str | os.PathLike[str]) -> str | None:
    """The PaddleClas model name a zoo file name starts with (``ResNet50_vd_ssld_pretrained`` -> ``ResNet50_vd``)."""
    from ssld.models.names import PADDLE_FAITHFUL

    stem = Path(path).name.split(".")[0]
    names = [n for n in PADDLE_FAITHFUL if stem == n or stem.startswith(n + "_")]
    return max(names, key=len) if names else None


def _timm_name(arch: str) -> str:
    """The timm name ``--arch`` resolves to; an unknown name is a UserError naming the option."""
    from ssld.models.names import resolve_model_name

    try:
        return resolve_model_name(arch)
    except UserError as e:
        raise UserError(f"--arch: {e}") from None


def convert_file(src: str | os.PathLike[str], arch: str | None, out: str | os.PathLike[str]) -> Converted:
    """Read ``src`` (.pdparams), convert it for ``arch`` (PaddleClas or timm name) and write ``out`` atomically."""
    import timm

    from ssld.models.paddle import rules_for
    from ssld.models.paddle.convert import apply_rules, head_classes
    from ssld.models.paddle.unpickle import read_pdparams
    from ssld.models.weights import save_safetensors

    src_path = Path(src)
    name = arch or guess_paddle_name(src_path)
    if name is None:
        raise UserError(f"--arch: not given, and the file name '{src_path.name}' starts with no PaddleClas model name")
    timm_name = _timm_name(name)
    arrays = read_pdparams(src_path)
    model = timm.create_model(timm_name, pretrained=False)
    rules = rules_for(model, src_path)
    classes = head_classes(arrays, rules) or model.num_classes
    if classes != model.num_classes:
        model = timm.create_model(timm_name, pretrained=False, num_classes=classes)
    state = apply_rules(arrays, model, rules, src_path, timm_name)
    model.load_state_dict(state, strict=False)  # shapes all checked: the head was built at the file's class count
    meta = {"arch": timm_name, "paddle_arch": name, "source": src_path.name, "num_classes": classes}
    save_safetensors(model.state_dict(), out, metadata=meta)
    params = sum(p.numel() for p in model.parameters())
    return Converted(name, timm_name, classes, len(arrays), params, Path(out))


def export_file(src: str | os.PathLike[str], arch: str, out: str | os.PathLike[str]) -> Converted:
    """The reverse of :func:`convert_file`: ssld/timm weights of ``arch`` (a PaddleClas name) -> ``.pdparams``.

    ``src`` is anything ``ssld`` loads as weights (``.safetensors``, a checkpoint); the class count comes from
    its classifier. The file is what ``paddle.save(model.state_dict())`` writes for PaddleClas's ``arch``.
    """
    import timm

    from ssld.models.paddle import rules_for
    from ssld.models.paddle.convert import to_paddle_arrays
    from ssld.models.paddle.pdsave import save_pdparams
    from ssld.models.weights import read_state_dict

    src_path = Path(src)
    timm_name = _timm_name(arch)
    state = read_state_dict(src_path)
    model = timm.create_model(timm_name, pretrained=False)
    rules = rules_for(model, src_path)
    head = next((r for r in rules if r.head), None)
    weight = state.get(f"{head.dst}.weight") if head else None
    classes = int(weight.shape[0]) if weight is not None else model.num_classes
    if classes != model.num_classes:
        model = timm.create_model(timm_name, pretrained=False, num_classes=classes)
    target = model.state_dict()
    bad = next((k for k in target if not k.endswith("num_batches_tracked")
                and (k not in state or state[k].shape != target[k].shape)), None)
    if bad is not None:
        got = tuple(state[bad].shape) if bad in state else "nothing"
        raise UserError(f"{src_path}: weights do not fit '{arch}' ({timm_name}): {bad} {tuple(target[bad].shape)}, "
                        f"the file has {got}")
    arrays = to_paddle_arrays(state, rules, timm_name)
    save_pdparams(arrays, out)
    params = sum(p.numel() for p in model.parameters())
    return Converted(arch, timm_name, classes, len(arrays), params, Path(out))
