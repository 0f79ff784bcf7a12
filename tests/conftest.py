"""Shared test settings: single-threaded torch (tests run beside each other on 2 cores), quiet progress bars."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("SSLD_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

torch.set_num_threads(1)
