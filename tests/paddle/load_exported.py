"""Load a .pdparams file written by ssld into PaddleClas's network and write its logits on a given batch.

Run as ``python load_exported.py NAME MODULE CLASSES FILE.pdparams INPUT.npy OUT.npy`` (a subprocess of the tests).
Fails unless ``paddle.load`` reads the file and every array lands in the network (no missing or extra keys).
"""

from __future__ import annotations

import importlib
import sys

import numpy as np
from reference import _backbone_importer


def main(name: str, module: str, classes: str, pdparams: str, inputs: str, out: str) -> None:
    import paddle

    paddle.set_device("cpu")
    model = getattr(importlib.import_module(_backbone_importer() + module), name)(
        pretrained=False, class_num=int(classes))
    state = paddle.load(pdparams)
    expected = set(model.state_dict())
    if set(state) != expected:
        raise SystemExit(f"keys differ: missing {sorted(expected - set(state))[:3]}, "
                         f"extra {sorted(set(state) - expected)[:3]}")
    model.set_state_dict(state)
    model.eval()
    with paddle.no_grad():
        np.save(out, model(paddle.to_tensor(np.load(inputs))).numpy())


if __name__ == "__main__":
    main(*sys.argv[1:7])
