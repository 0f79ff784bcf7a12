"""What several stages share: running an ``ssld`` subcommand in-process, and the run's image root."""

from __future__ import annotations

from pathlib import Path

from ssld.pipeline.runner import StageContext


def invoke(argv: list[str]) -> None:
    """Run an ``ssld`` subcommand in this process (UserErrors propagate with their one-line message)."""
    from ssld.cli import build_parser

    args = build_parser().parse_args(argv)
    code = int(args._run(args) or 0)
    if code:
        raise RuntimeError(f"ssld {' '.join(argv)} exited with {code}")


def data_lists(ctx: StageContext) -> tuple[str, Path]:
    """``(image_root, data stage dir)`` of this run (the data stage must be a dependency)."""
    data_dir = ctx.stage_dir("data")
    root = ctx.upstream.get("data", {}).get("metrics", {}).get("image_root")
    return str(data_dir if root in (None, ".") else root), data_dir
