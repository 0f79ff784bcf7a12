"""Human-readable numbers shared by the status table and the report."""

from __future__ import annotations


def format_seconds(seconds: float | None) -> str:
    """``75.3`` -> ``1m15s``; None -> ``-``."""
    if seconds is None:
        return "-"
    s = round(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{seconds:.1f}s"
