"""``python -m ssld`` in a subprocess, for tests that need a fresh process (exit codes, signals, stderr)."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers.paths import ROOT


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m ssld ARGS`` in a subprocess with one intra-op thread."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ssld", *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=ROOT, check=False)
