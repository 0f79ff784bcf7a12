"""Build random-init PaddleClas networks, save them as .pdparams and their logits on a random batch as .npy.

Run as ``python reference.py OUT_DIR SPECS_JSON`` (a subprocess of the tests, so Paddle and torch never share a
process). Each spec: ``{"name": "ResNet18_vd", "module": "legendary_models.resnet", "size": 56, "kwargs": {}}``.
Writes ``OUT_DIR/<name>.pdparams``, ``<name>.input.npy`` (N, 3, size, size) and ``<name>.logits.npy``.
Batch-norm statistics and affine parameters are randomised too, so a swapped mean/variance would show.

Only PaddleClas's backbone modules are imported: its package ``__init__`` pulls in its training stack (sklearn,
visualdl, an old OpenCV pin), which the ``paddle`` test extra does not install.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
import types
from pathlib import Path

import numpy as np


def _backbone_importer() -> str:
    """Make ``paddleclas.ppcls.arch.backbone.*`` importable without running the package ``__init__`` files."""
    spec = importlib.util.find_spec("paddleclas")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("paddleclas is not installed (pip install --no-deps paddleclas==2.6.0)")
    root = spec.submodule_search_locations[0]
    for name, sub in [
        ("paddleclas", ""),
        ("paddleclas.ppcls", "/ppcls"),
        ("paddleclas.ppcls.arch", "/ppcls/arch"),
        ("paddleclas.ppcls.arch.backbone", "/ppcls/arch/backbone"),
        ("paddleclas.ppcls.utils", "/ppcls/utils"),
    ]:
        module = types.ModuleType(name)
        module.__path__ = [root + sub]
        sys.modules[name] = module
    # pretrained-weight download helpers: never used here (pretrained=False), and they import requests
    save_load = types.ModuleType("paddleclas.ppcls.utils.save_load")

    def _no_download(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no pretrained weights in tests")

    save_load.load_dygraph_pretrain = _no_download
    save_load.load_dygraph_pretrain_from_url = _no_download
    sys.modules[save_load.__name__] = save_load
    from paddleclas.ppcls.utils import logger

    logger.init_logger(log_level=logging.ERROR)
    return "paddleclas.ppcls.arch.backbone."


def _randomise(state: dict, rng: np.random.Generator) -> dict:
    out = {}
    for key, value in state.items():
        array = value.numpy()
        if key.endswith("_variance"):
            array = rng.uniform(0.5, 1.5, array.shape)
        elif key.endswith("_mean"):
            array = rng.normal(0.0, 0.1, array.shape)
        elif array.ndim <= 1:
            array = array + rng.normal(0.0, 0.1, array.shape)
        out[key] = array.astype(value.numpy().dtype)
    return out


def main(out_dir: str, specs_json: str) -> None:
    import paddle

    paddle.set_device("cpu")
    prefix = _backbone_importer()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for i, spec in enumerate(json.loads(specs_json)):
        paddle.seed(i)
        rng = np.random.default_rng(i)
        module = importlib.import_module(prefix + spec["module"])
        with paddle.utils.unique_name.guard():  # MobileNetV2 names its parameters: one namespace per model
            model = getattr(module, spec["name"])(pretrained=False, **spec.get("kwargs", {}))
        model.set_state_dict(_randomise(model.state_dict(), rng))
        model.eval()
        size = spec["size"]
        x = rng.standard_normal((2, 3, size, size)).astype("float32")
        with paddle.no_grad():
            logits = model(paddle.to_tensor(x)).numpy()
        tag = spec.get("tag", spec["name"])
        paddle.save(model.state_dict(), str(out / f"{tag}.pdparams"))
        np.save(out / f"{tag}.input.npy", x)
        np.save(out / f"{tag}.logits.npy", logits)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
