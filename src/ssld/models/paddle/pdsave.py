"""Write a dict of numpy arrays as a ``.pdparams`` file that ``paddle.load`` reads (``ssld convert --to-paddle``).

``paddle.save(layer.state_dict(), path)`` pickles a dict of parameter name -> numpy array. This writes the same
pickle with protocol 3 and names numpy's array constructor ``numpy.core.multiarray._reconstruct``, the spelling
every numpy reads (numpy 2 would write ``numpy._core``, which numpy 1.x, as shipped beside paddle, cannot import).
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

import numpy as np

from ssld.utils.io import atomic_path

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's _reconstruct, wherever this numpy keeps it


class _Pickler(pickle._Pickler):  # the pure-Python pickler: its save_global can be overridden
    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is _RECONSTRUCT:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def pdparams_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The pickle ``paddle.save`` would write for ``arrays`` (plain C-contiguous numeric arrays)."""
    plain = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    for k, v in plain.items():
        if v.dtype.kind not in "biuf":
            raise ValueError(f"{k}: dtype {v.dtype} is not numeric")
    buf = io.BytesIO()
    _Pickler(buf, protocol=3).dump(plain)
    return buf.getvalue()


def save_pdparams(arrays: dict[str, np.ndarray], path: str | os.PathLike[str]) -> None:
    """Write ``arrays`` to ``path`` as a ``.pdparams`` pickle, atomically."""
    data = pdparams_bytes(arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
