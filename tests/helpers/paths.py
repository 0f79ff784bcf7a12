"""Folders of the repository the tests read: its root, the shipped configs and the Fashion-MNIST ones."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
CONFIGS = ROOT / "configs"
FM_CONFIGS = CONFIGS / "fashion_mnist"
