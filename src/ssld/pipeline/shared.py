"""What several stages share: the run's image root."""

from __future__ import annotations

from pathlib import Path

from ssld.pipeline.runner import StageContext


def data_lists(ctx: StageContext) -> tuple[str, Path]:
    """``(image_root, data stage dir)`` of this run (the data stage must be a dependency)."""
    data_dir = ctx.stage_dir("data")
    root = ctx.upstream.get("data", {}).get("metrics", {}).get("image_root")
    return str(data_dir if root in (None, ".") else root), data_dir
