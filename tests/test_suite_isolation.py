"""The suite's own settings (pyproject.toml) turn a native crash or a hang inside a test into one failed test that
names it, while the rest of the suite runs on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers.paths import ROOT

CRASHING = '''
import os

def test_before(): pass
def test_aborts(): os.abort()
def test_hangs():
    while True:
        pass
def test_after(): pass
'''


def test_an_abort_and_a_hang_fail_their_tests_and_the_suite_goes_on(tmp_path: Path) -> None:
    (tmp_path / "test_crashing.py").write_text(CRASHING)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir",
                           str(tmp_path), "-n", "2", "-o", "timeout=5", str(tmp_path / "test_crashing.py")],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "FAILED test_crashing.py::test_aborts" in out and "FAILED test_crashing.py::test_hangs" in out
    assert "2 failed, 2 passed" in out
