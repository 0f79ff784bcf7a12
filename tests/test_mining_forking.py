"""Forked dedup workers keep working after the parent process has used OpenCV's thread pool."""

from __future__ import annotations

import numpy as np


def _sift_keypoints(image: np.ndarray) -> int:
    import cv2

    cv2.setNumThreads(1)  # what the alignment and SIFT workers do first
    return len(cv2.SIFT_create().detect(image, None))


def test_forked_pool_children_use_opencv_after_the_parent_ran_it_threaded() -> None:
    """A plain fork here hangs its children forever (OpenCV's pool lock, held by a parent thread, is copied
    locked); ``forked_pool`` stops the parent's pool threads around the fork and gives its thread count back."""
    import cv2

    from ssld.mining.forking import forked_pool

    image = cv2.GaussianBlur((np.random.default_rng(0).random((512, 512)) * 255).astype(np.uint8), (0, 0), 2)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        expected = len(cv2.SIFT_create().detectAndCompute(image, None)[0])  # the parent's pool now has threads
        cv2.resize(image, (2048, 2048))
        with forked_pool(2) as pool:
            counts = pool.map_async(_sift_keypoints, [image] * 4).get(timeout=120)
        assert counts == [expected] * 4
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(threads)
