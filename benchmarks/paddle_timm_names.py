"""Do PaddleClas's model names map to timm networks of the same design? One row per name of
``ssld.models.paddle.timm_names.TIMM_NAMES``: trainable parameters of PaddleClas's network (its own definition,
built by Paddle with 1,000 classes, each in a process of its own: Paddle's fixed parameter names collide within one
process) against timm's, and their relative difference.

TinyNet is built with its configs' ``override_params: {depth_trunc: round}`` (``PADDLE_KWARGS``). Needs the
``paddle`` extra (``make test`` installs paddlepaddle and paddleclas). Prints a Markdown table and the
counts; ``--json`` writes the rows.

Run: ``.venv/bin/python benchmarks/paddle_timm_names.py [--only VGG16,DPN68] [--jobs 2] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

_PADDLE_COUNT = """
import importlib, json, re, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import importlib.util
import numpy as np
import reference
root = importlib.util.find_spec("paddleclas").submodule_search_locations[0]
reference._backbone_importer()
import paddle
paddle.set_device("cpu")
init = (Path(root) / "ppcls" / "arch" / "backbone" / "__init__.py").read_text()
where = {{n.strip(): mod for mod, names in re.findall(r"from \\.([\\w.]+) import ([\\w, ]+)", init)
         for n in names.split(",")}}
name, kwargs = sys.argv[1], json.loads(sys.argv[2])
model = getattr(importlib.import_module("paddleclas.ppcls.arch.backbone." + where[name]), name)(class_num=1000,
                                                                                              **kwargs)
print(sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient))
"""


# PaddleClas constructor arguments its own configs give: TinyNet's configs round depths as timm does (PaddleClas's
# default, ceil, builds deeper networks: 7.8M parameters for TinyNet_A against 6.2M)
PADDLE_KWARGS = {f"TinyNet_{s}": {"override_params": {"depth_trunc": "round"}} for s in "ABCDE"}


def paddle_params(name: str) -> int | str:
    """Trainable parameters of PaddleClas's ``name``, or the last line of its error."""
    code = _PADDLE_COUNT.format(tests=str(ROOT / "tests" / "paddle"))
    run = subprocess.run([sys.executable, "-c", code, name, json.dumps(PADDLE_KWARGS.get(name, {}))],
                         capture_output=True, text=True, timeout=600, check=False)
    if run.returncode:
        return (run.stderr.strip().splitlines() or ["failed"])[-1][:160]
    return int(run.stdout.strip().splitlines()[-1])


def timm_params(timm_name: str) -> int:
    import timm

    model = timm.create_model(timm_name.split(".")[0], num_classes=1000)
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> int:
    from ssld.models.paddle.timm_names import TIMM_NAMES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated PaddleClas names (default: all)")
    ap.add_argument("--jobs", type=int, default=2, help="Paddle processes at once (default 2)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(TIMM_NAMES)
    unknown = [n for n in names if n not in TIMM_NAMES]
    if unknown:
        raise SystemExit(f"--only: not in TIMM_NAMES: {', '.join(unknown)}")
    with ThreadPoolExecutor(args.jobs) as pool:
        paddle = list(pool.map(paddle_params, names))
    rows = []
    print("| PaddleClas | timm | PaddleClas params | timm params | difference |\n|---|---|---|---|---|")
    for name, pd in zip(names, paddle, strict=True):
        tm = timm_params(TIMM_NAMES[name])
        diff = (tm - pd) / pd if isinstance(pd, int) else None
        rows.append({"paddleclas": name, "timm": TIMM_NAMES[name], "paddleclas_params": pd, "timm_params": tm,
                     "relative_difference": diff})
        shown = f"{diff:+.4%}" if diff is not None else "not built"
        pd_shown = f"{pd:,}" if isinstance(pd, int) else pd
        print(f"| {name} | {TIMM_NAMES[name]} | {pd_shown} | {tm:,} | {shown} |", flush=True)
    exact = sum(r["relative_difference"] == 0 for r in rows)
    close = sum(r["relative_difference"] is not None and 0 < abs(r["relative_difference"]) <= 1e-3 for r in rows)
    print(f"\n{exact} equal, {close} within 0.1 %, {len(rows) - exact - close} other, of {len(rows)}")
    if args.json:
        from ssld.utils.io import write_json

        write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
