"""Read a PaddlePaddle ``.pdparams`` file without running code from it.

``paddle.save(model.state_dict(), path)`` writes a pickle of a dict of numpy arrays. A pickle can name any
importable callable and call it, so :func:`read_pdparams` uses an unpickler whose ``find_class`` hands out only the
few callables numpy's own array pickling needs, each wrapped so it can build nothing but a plain numeric array or
dtype. Any other global (``os.system``, ``builtins.eval``...) is refused before anything is called.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ssld.errors import UserError

# Names Paddle adds next to the weights: a map of structured names to parameter names (not weights).
_META_KEYS = ("StructuredToParameterName@@",)
# What other Paddle files are, and what to pass instead.
_OTHER_PADDLE_FILES = {
    ".pdopt": "PaddlePaddle optimizer state (.pdopt), not weights: pass the .pdparams file saved next to it",
    ".pdmodel": "a PaddlePaddle inference program (.pdmodel), not loadable weights: pass the training "
    "checkpoint's .pdparams file (e.g. ResNet50_vd_pretrained.pdparams)",
    ".pdiparams": "PaddlePaddle inference weights (.pdiparams, a combined binary for Paddle Inference): pass the "
    "training checkpoint's .pdparams file (e.g. ResNet50_vd_pretrained.pdparams)",
    ".pdema": "PaddlePaddle EMA weights (.pdema): rename it to .pdparams to load the EMA weights",
}


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct``, for plain ``ndarray`` only (no subclass constructors)."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to build array subtype {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, _dtype(dtype))


def _dtype(*args: Any) -> np.dtype:
    """numpy's ``dtype`` constructor, numeric and bool dtypes only (an object dtype could hold anything)."""
    dt = np.dtype(*args[:1])
    if dt.hasobject or dt.kind not in "biufc":
        raise pickle.UnpicklingError(f"refusing array dtype {dt}")
    return dt


def _encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode``, which protocol-2 pickles use for bytes; only for the latin-1 text they store."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("refusing _codecs.encode with unexpected arguments")
    return text.encode("latin1")


# (module, name) -> the callable handed to the pickle. numpy moved ``core`` to ``_core`` in 2.0; both spellings
# occur in files written by different Paddle versions.
_ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
}


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, dicts, lists, tuples, strings and numbers; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return found


def _plain(obj: Any) -> bool:
    """True for the nesting of containers and arrays a weights file holds."""
    if isinstance(obj, np.ndarray):
        return True
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return all(_plain(v) for v in obj)
    return isinstance(obj, (str, bytes, int, float, bool)) or obj is None


def check_paddle_suffix(path: Path) -> None:
    """UserError for a Paddle file that is not a ``.pdparams`` weights file."""
    hint = _OTHER_PADDLE_FILES.get(path.suffix.lower())
    if hint is not None:
        raise UserError(f"{path}: {hint}")


def read_pdparams(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.pdparams`` file by parameter name; UserError for a file that is not plain weights."""
    p = Path(path)
    check_paddle_suffix(p)
    if not p.is_file():
        raise UserError(f"{p}: weights file not found")
    try:
        obj = _ArrayUnpickler(io.BytesIO(p.read_bytes())).load()
    except pickle.UnpicklingError as e:
        if str(e).startswith("refusing"):
            raise UserError(f"{p}: not a plain .pdparams weights file, refused without running it ({e})") from None
        raise UserError(f"{p}: not a readable .pdparams file ({e})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as e:
        raise UserError(f"{p}: not a readable .pdparams file ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict) or not _plain(obj):
        raise UserError(f"{p}: holds a {type(obj).__name__}, not a dict of parameter arrays")
    arrays = {k: v for k, v in obj.items() if k not in _META_KEYS and isinstance(v, np.ndarray)}
    if not arrays:
        raise UserError(f"{p}: no parameter arrays found (keys: {sorted(obj)[:5]})")
    return arrays
