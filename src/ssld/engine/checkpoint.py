"""Training checkpoints: atomic writes, safe loads, and every RNG state a bit-exact resume needs.

A checkpoint is a plain dict of tensors, numbers and lists (``{"model", "optimizer", "scheduler", "scaler",
"epoch", "batch", "step", "updates", "samples", "rng", "config_hash", "world_size", "ema"}``) so that
``torch.load(weights_only=True)`` reads it without unpickling arbitrary objects.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssld.config.schema import SSLDConfig
from ssld.errors import UserError, first_line
from ssld.utils.io import atomic_path, sha256_json

# Keys that may differ between a run and its resume without changing what is trained.
_RUN_ONLY_KEYS = {"checkpoints", "output_dir", "save_interval", "save_steps", "log_interval", "device"}


def config_hash(cfg: SSLDConfig) -> str:
    """Hash of the settings that define the training (output paths and resume pointers excluded)."""
    data = cfg.model_dump(mode="json")
    data["Global"] = {k: v for k, v in data["Global"].items() if k not in _RUN_ONLY_KEYS}
    return sha256_json(data)


def rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), Python and NumPy generator states, in a ``weights_only``-safe form."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the generator states saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state(
        ("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["gauss"])
    )
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def save_checkpoint(path: str | Path, ckpt: dict[str, Any]) -> None:
    """Write ``ckpt`` atomically: a crash mid-write leaves the previous file intact."""
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path: str | Path, key: str = "Global.checkpoints") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a missing or unreadable file is a one-line UserError."""
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoints" / "latest.pt" if (p / "checkpoints").is_dir() else p / "latest.pt"
    if not p.is_file():
        raise UserError(f"{key}: checkpoint '{path}' not found")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise UserError(f"{key}: cannot read checkpoint '{p}': {first_line(e)}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "step" not in ckpt:
        raise UserError(f"{key}: '{p}' is not an ssld training checkpoint (use Global.pretrained_model for weights)")
    return ckpt
