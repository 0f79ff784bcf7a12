"""The grain rule: a copy made without resampling keeps its source's pixel noise; the next crop of one sky does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from ssld.mining.noise import NoiseVerifier, residual


@pytest.fixture()
def sky(tmp_path: Path) -> dict[str, str]:
    """Two side-by-side crops of scikit-image's rocket photograph's sky (grayscale std 7-12: no detail to align
    or for SIFT) and edited copies of the first."""
    import skimage.data

    photo = Image.fromarray(skimage.data.rocket()).convert("RGB")
    src, nxt = photo.crop((0, 0, 130, 130)), photo.crop((140, 0, 270, 130))
    files = {"src": tmp_path / "src.png", "next": tmp_path / "next.png", "copy": tmp_path / "copy.jpg",
             "smaller": tmp_path / "smaller.png", "larger": tmp_path / "larger.png"}
    src.save(files["src"])
    nxt.save(files["next"])
    # cropped, contrast-stretched, mirrored, recompressed: no resampling
    ImageOps.mirror(ImageEnhance.Contrast(src.crop((10, 15, 120, 125))).enhance(1.2)).save(files["copy"], quality=90)
    src.resize((91, 91), Image.BILINEAR).save(files["smaller"])
    src.resize((200, 200), Image.BILINEAR).save(files["larger"])
    return {k: str(v) for k, v in files.items()}


def test_residual_is_clipped_grain() -> None:
    """Edges do not dominate the residual: it is clipped at a few robust standard deviations of itself."""
    rng = np.random.default_rng(0)
    img = np.full((64, 64), 100.0) + rng.normal(0, 2, (64, 64))
    img[:, 32:] += 100  # one strong edge
    r = residual(np.clip(img, 0, 255).astype(np.uint8))
    assert r.dtype == np.float32 and r.shape == (64, 64)
    assert np.abs(r).max() <= 2.5 * 1.4826 * np.median(np.abs(r)) + 1e-2


def test_grain_tells_a_copy_of_a_smooth_crop_from_the_next_crop(sky: dict[str, str]) -> None:
    s = NoiseVerifier().scores(sky["copy"], [sky["src"], sky["next"]])
    assert s[0] >= 0.5 and s[1] <= 0.15, s


def test_resampled_copies_carry_no_grain(sky: dict[str, str]) -> None:
    """The rule's limit: a resized copy loses the grain (the alignment and SIFT judge it); a copy larger than
    the reference cannot be compared at all."""
    v = NoiseVerifier()
    assert v.scores(sky["smaller"], [sky["src"], sky["next"]]).max() < 0.3
    assert (v.scores(sky["larger"], [sky["src"], sky["next"]]) == -1).all()
    assert list(v._cache) == [sky["src"], sky["next"]]  # references only are cached


def test_dedup_removes_the_copy_by_its_grain(sky: dict[str, str], monkeypatch) -> None:
    """End to end: the copy goes, with its source, and the next crop stays, before SIFT is asked (with the rule
    off, SIFT finds this copy on the rocket's few keypoints, at several times the cost)."""
    from ssld.mining.dedup import decide, search
    from ssld.mining.rules import Thresholds

    pool, ref = [sky["copy"], sky["next"]], [sky["src"], sky["larger"]]
    nb = search(pool, ref, None, None, workers=0, progress=False)
    matches = decide(nb, Thresholds(), pool, ref)
    assert [(m.pool, m.ref, m.method) for m in matches] == [(0, 0, "noise")]
    assert matches[0].score >= 0.5 and matches[0].margin >= Thresholds().noise_ratio
    import ssld.mining.dedup as dedup_mod

    def never(*a, **k):
        raise AssertionError("the grain is compared with its rule off")

    monkeypatch.setattr(dedup_mod, "noise_verdicts", never)  # off: not even computed
    off = decide(nb, Thresholds(noise_min=1.01), pool, ref)
    assert [(m.pool, m.ref) for m in off] == [(0, 0)] and off[0].method != "noise"


def test_grain_verdicts_in_forked_workers_are_the_same(sky: dict[str, str], monkeypatch) -> None:
    import ssld.mining.verify as verify_mod
    from ssld.mining.dedup import noise_verdicts, search
    from ssld.mining.rules import Thresholds

    pool, ref = [sky["copy"], sky["next"], sky["smaller"]], [sky["src"], sky["larger"]]
    nb = search(pool, ref, None, None, workers=0, progress=False)
    monkeypatch.setattr(verify_mod, "PARALLEL_MIN", 1)
    one = noise_verdicts(nb, Thresholds(), pool, ref, workers=1)
    assert one and [m.pool for m in one] == sorted(m.pool for m in one)
    assert noise_verdicts(nb, Thresholds(), pool, ref, workers=2) == one


def test_the_way_round_is_judged_small_and_symmetric_content_keeps_both(sky: dict[str, str], tmp_path: Path) -> None:
    """At the reference's scale and 32 px, a mirrored copy fits one way round much better (the photograph, and
    even the rocket's sky), so only that way is compared at full size; content that is the same both ways round
    (a vertical gradient) keeps both (leaving one out changed no verdict on the photo benchmark)."""
    import cv2
    from helpers.photos import _photo

    from ssld.mining.noise import LOW, _small, fits, ways

    photo = _photo("astronaut", 256)
    photo.save(tmp_path / "ref.png")
    ImageOps.mirror(photo.crop((20, 20, 230, 230))).save(tmp_path / "copy.png")
    ref, copy = (cv2.imread(str(tmp_path / f), cv2.IMREAD_GRAYSCALE) for f in ("ref.png", "copy.png"))
    k = min(ref.shape) / LOW
    assert ways(fits(_small(copy, k), _small(ref, k))) == (False, True)
    assert ways(fits(_small(copy[:, ::-1].copy(), k), _small(ref, k))) == (True, False)
    src, sky_copy = (cv2.imread(sky[f], cv2.IMREAD_GRAYSCALE) for f in ("src", "copy"))
    k = min(src.shape) / LOW
    assert ways(fits(_small(sky_copy, k), _small(src, k))) == (False, True)
    rng = np.random.default_rng(0)
    grad = np.clip(np.linspace(40, 220, 160)[:, None] + rng.normal(0, 3, (160, 160)), 0, 255).astype(np.uint8)
    k = 160 / LOW
    assert ways(fits(_small(grad[10:150, 12:148], k), _small(grad, k))) == (True, True)
    # and the grain still finds both copies
    s = NoiseVerifier().scores(str(tmp_path / "copy.png"), [str(tmp_path / "ref.png")])
    assert s[0] >= 0.5


def test_a_reference_read_again_keeps_its_clip_level(sky: dict[str, str]) -> None:
    """With a cache too small for the references, each is read again for every pool image; its clip level (the
    median) is kept, and the scores are the same as with every residual cached."""
    refs = [sky["src"], sky["next"]]
    full = NoiseVerifier().scores(sky["copy"], refs)
    small = NoiseVerifier(cache_size=1)
    first, again = small.scores(sky["copy"], refs), small.scores(sky["copy"], refs)
    assert np.array_equal(first, full) and np.array_equal(again, full)
    assert set(small._clip) == set(refs) and list(small._cache) == [sky["next"]]


def test_images_over_the_pixel_cap_are_not_compared(sky: dict[str, str], monkeypatch) -> None:
    """The grain costs with the pixels: a pool image or a reference over ``MAX_PIXELS`` is not compared (-1), and
    is never decoded for it."""
    import cv2

    from ssld.mining import noise

    monkeypatch.setattr(noise, "MAX_PIXELS", 120 * 120)  # the sky crops are 130 x 130, the copy 110 x 110
    decoded = []
    real = cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda path, *a: decoded.append(path) or real(path, *a))
    s = NoiseVerifier().scores(sky["copy"], [sky["src"], sky["next"]])
    assert (s == -1).all() and decoded == [sky["copy"]]
    assert (NoiseVerifier().scores(sky["src"], [sky["copy"]]) == -1).all()
