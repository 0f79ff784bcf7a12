"""Forking worker processes that use OpenCV, safely.

OpenCV's thread pool does not survive ``fork``: once the parent has run a parallel OpenCV call (a large resize,
SIFT), a forked child that touches the pool - even ``cv2.setNumThreads(1)`` - waits forever on a lock that one
of the parent's threads held. Dedup forks for hashing (data-loader workers), the alignment and SIFT, so the
parent runs OpenCV single-threaded while children are forked, then gets its thread count back.

The children's BLAS runs single-threaded too: the processes are the parallelism, and a forked child whose
OpenBLAS kept the parent's thread count spent 3.6x as long on the alignment's small matrix products (51 s
instead of 14 s on the photo benchmark's seed 0, 2 workers, 2-core Intel Xeon).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.pool import Pool


@contextmanager
def cv2_single_thread() -> Iterator[None]:
    """OpenCV single-threaded in this process for the duration (its pool's threads stopped, not inherited)."""
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


@contextmanager
def forked_pool(workers: int) -> Iterator[Pool]:
    """A ``fork`` process pool of ``workers`` whose children can use OpenCV (see the module docstring)."""
    with cv2_single_thread(), mp.get_context("fork").Pool(workers, initializer=single_threaded_blas) as pool:
        yield pool


def single_threaded_blas():
    """BLAS single-threaded in this process: for the duration when used as a context manager, for good when just
    called (as each forked worker does)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
