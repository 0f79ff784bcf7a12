"""Which of PaddleClas's own distillation configs ``ssld check`` accepts unchanged: one row per config.

Walks a PaddleClas checkout, takes every YAML under ``ppcls/configs`` that uses ``DistillationModel`` (``--all``:
every YAML there) and runs the
validation ``ssld check`` runs on it, as the file is: the config is loaded (schema, names, losses) and its models,
train loss, optimizer and lr schedule are built (``ssld.engine.check.build_parts``; pretrained weights that are
not here become random weights, as in ``ssld check``). ``--step`` also runs the one training step of ``ssld
check`` at a small image size (``--step-size``, batch 2), which takes minutes for the ImageNet-sized models.

Prints a Markdown table (config, result) and the pass count; ``--json`` also writes the rows to a file.

Run: ``PYTHONPATH=src python benchmarks/paddleclas_configs.py --paddleclas-src /path/to/PaddleClas [--step]``
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def distillation_configs(src: Path, every: bool = False) -> list[Path]:
    """Every ``ppcls/configs/**/*.yaml`` that mentions ``DistillationModel`` (``every``: all of them), sorted."""
    base = src / "ppcls" / "configs"
    if not base.is_dir():
        raise SystemExit(f"--paddleclas-src: {src} has no ppcls/configs folder (give a PaddleClas checkout)")
    return sorted(p for p in base.rglob("*.yaml") if every or "DistillationModel" in p.read_text(errors="replace"))


def check_one(path: Path, step_size: int | None) -> str:
    """``pass`` or the one-line refusal (without the file name, which the row already gives)."""
    from ssld.config import load_config
    from ssld.engine.check import build_parts, step
    from ssld.errors import UserError

    try:
        cfg = load_config(path)
        if step_size is None:
            build_parts(cfg)
        else:
            small = load_config(path, [f"Global.image_shape=[3,{step_size},{step_size}]"])
            step(small, batch_size=2)
    except UserError as e:
        return str(e).removeprefix(str(path)).lstrip(":")
    return "pass"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paddleclas-src", required=True, type=Path, help="a PaddleClas checkout (its root folder)")
    ap.add_argument("--step", action="store_true", help="also run one training step per config (slow)")
    ap.add_argument("--step-size", type=int, default=64, help="image size of that step (default 64)")
    ap.add_argument("--json", type=Path, help="also write the rows here as JSON")
    ap.add_argument("--all", action="store_true", help="every config, not only the distillation ones")
    args = ap.parse_args(argv)

    import torch

    torch.manual_seed(0)
    logging.basicConfig(level=logging.ERROR)  # the random-weights warnings of every config would drown the table
    configs = distillation_configs(args.paddleclas_src, args.all)
    rows = []
    print("| config | `ssld check` |\n|---|---|")
    for path in configs:
        rel = path.relative_to(args.paddleclas_src / "ppcls" / "configs").as_posix()
        result = check_one(path, args.step_size if args.step else None)
        rows.append({"config": rel, "result": result})
        print(f"| {rel} | {result.replace('|', '/')} |", flush=True)
    passed = sum(r["result"] == "pass" for r in rows)
    print(f"\n{passed}/{len(rows)} pass")
    if args.json:
        from ssld.utils.io import write_json

        write_json(args.json, {"passed": passed, "total": len(rows), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
