"""SIFT verification: the mirrored pool image's features come from the image's own, without a second detection."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from helpers.photos import _photo
from PIL import ImageOps

from ssld.mining.sift import MIRROR, Features, SiftVerifier


def test_mirrored_features_match_a_detection_on_the_mirrored_image() -> None:
    """Positions mirrored and descriptor entries permuted equal what SIFT finds on the flipped photograph: for
    most keypoints there is a detection at the same place with (nearly) the same descriptor."""
    assert np.array_equal(MIRROR[MIRROR], np.arange(128))  # mirroring twice is the identity
    sift = cv2.SIFT_create(contrastThreshold=0.01)
    gray = np.asarray(_photo("astronaut", 256).convert("L"))
    derived = Features.detect(sift, gray).mirrored()
    direct = Features.detect(sift, np.ascontiguousarray(gray[:, ::-1]))
    assert len(derived.points) > 100
    diffs = []
    for p, d in zip(derived.points, derived.descriptors, strict=True):
        near = np.flatnonzero(np.linalg.norm(direct.points - p, axis=1) < 0.5)
        if len(near):
            diffs.append(min(np.linalg.norm(direct.descriptors[near] - d, axis=1)) / np.linalg.norm(d))
    assert len(diffs) >= 0.8 * len(derived.points)
    assert np.median(diffs) < 0.02 and np.quantile(diffs, 0.9) < 0.2
    # the unpermuted descriptors would not match: the permutation is what makes them equal
    plain = Features.detect(sift, gray)
    assert np.median(np.linalg.norm(plain.descriptors - plain.descriptors[:, MIRROR], axis=1)
                     / np.linalg.norm(plain.descriptors, axis=1)) > 0.5


def test_a_flipped_copy_is_verified_with_one_detection(tmp_path: Path) -> None:
    photo = _photo("chelsea", 200)
    photo.save(tmp_path / "ref.png")
    ImageOps.mirror(photo).save(tmp_path / "flipped.jpg", quality=80)
    _photo("coffee", 200).save(tmp_path / "other.png")
    verifier = SiftVerifier()
    copy, other = verifier.verify_all(str(tmp_path / "flipped.jpg"), [str(tmp_path / "ref.png"),
                                                                       str(tmp_path / "other.png")])
    assert copy.inliers >= 50 and other.inliers <= 3 and copy.conclusive
    assert list(verifier._cache) == [str(tmp_path / "ref.png"), str(tmp_path / "other.png")]  # references only


def test_large_images_are_bounded_and_still_verified(tmp_path: Path) -> None:
    """An ImageNet-sized photograph and its edited copy: SIFT works on at most MAX_SIDE px and MAX_FEATURES
    keypoints (the strongest), and the copy is still found while an unrelated photograph is not."""
    from PIL import ImageEnhance

    from ssld.mining.sift import MAX_FEATURES, MAX_SIDE

    photo = _photo("astronaut", 512)  # 512 x 512, thousands of keypoints at full size
    photo.save(tmp_path / "ref.png")
    copy = ImageEnhance.Brightness(photo.crop((40, 30, 480, 470))).enhance(1.15)
    copy.save(tmp_path / "copy.jpg", quality=70)
    _photo("coffee", 512).save(tmp_path / "other.png")
    verifier = SiftVerifier()
    assert verifier.max_side == MAX_SIDE < 512
    assert 100 < verifier.keypoints(str(tmp_path / "ref.png")) <= MAX_FEATURES
    found, other = verifier.verify_all(str(tmp_path / "copy.jpg"), [str(tmp_path / "ref.png"),
                                                                     str(tmp_path / "other.png")])
    assert found.inliers >= 50 and other.inliers <= 3


def test_a_photograph_twice_the_bound_is_decoded_reduced(tmp_path: Path) -> None:
    """At twice MAX_SIDE or more, the file is decoded at a reduced scale (JPEG's DCT scaling) before the resize,
    and a copy is still verified against it."""
    from PIL import Image

    from ssld.mining.sift import MAX_SIDE, _gray

    photo = _photo("astronaut", 512).resize((1024, 1024), Image.BICUBIC)  # the 2x path needs >= 640 px
    photo.save(tmp_path / "ref.jpg", quality=92)
    photo.crop((80, 60, 960, 940)).save(tmp_path / "copy.jpg", quality=80)
    assert max(_gray(str(tmp_path / "ref.jpg"), MAX_SIDE).shape) == MAX_SIDE
    from ssld.mining.align import load_gray

    # the alignment's 128 px redo reads files the same way

    assert 128 <= min(load_gray(str(tmp_path / "ref.jpg"), 128).shape) < 256
    assert load_gray(str(tmp_path / "ref.jpg")).shape == (1024, 1024)
    found = SiftVerifier().verify_all(str(tmp_path / "copy.jpg"), [str(tmp_path / "ref.jpg")])[0]
    assert found.inliers >= 50
