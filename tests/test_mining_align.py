"""Aligned NCC verification: crops, rotations and mirrors of real photographs score high against their source
only; the verdicts do not depend on how many worker processes computed them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.fashion_mnist import fmnist
from helpers.photos import write_photo_fixture
from PIL import Image, ImageEnhance, ImageOps

from ssld.mining.align import (
    SIDE,
    Aligner,
    Grid,
    _blur_matrix,
    _coarse,
    _rotated,
    _Rotations,
    _template,
    restore,
    square,
)
from ssld.mining.rules import Thresholds


def _sq(img: Image.Image) -> tuple[np.ndarray, tuple[int, int]]:
    return square(np.asarray(img.convert("L"))), img.size


def _photo(tmp_path: Path, name: str) -> Image.Image:
    with Image.open(tmp_path / "ref" / f"{name}.png") as f:
        return f.convert("RGB")


def test_square_and_restore_keep_the_aspect() -> None:
    gray = np.tile(np.arange(200, dtype=np.uint8), (100, 1))  # 200 x 100, a horizontal ramp
    sq = square(gray)
    assert sq.shape == (SIDE, SIDE) and sq.dtype == np.uint8
    back = restore(sq, (200, 100), 32)
    assert back.shape == (32, 64) and back.dtype == np.float32
    assert np.all(np.diff(back[16]) >= 0)  # still a left-to-right ramp


@pytest.mark.parametrize(("h", "w", "sigma"), [(32, 32, 4.0), (32, 43, 4.0), (64, 40, 8.0), (128, 171, 32.0)])
def test_blur_matrix_is_opencvs_gaussian_blur(h: int, w: int, sigma: float) -> None:
    import cv2

    img = cv2.GaussianBlur((np.random.default_rng(0).random((h, w)) * 255).astype(np.float32), (0, 0), 1.5)
    want = cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    got = _blur_matrix(h, sigma) @ img @ _blur_matrix(w, sigma).T
    assert np.abs(got - want).max() < 1e-5 * np.ptp(img)  # float rounding only


def test_coarse_search_is_opencvs_match_template_over_the_grid() -> None:
    """The batched spectral search gives, per reference, the best NCC and cell of a loop of matchTemplate calls."""
    import cv2

    g = Grid()
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur((rng.random((96, 96)) * 255).astype(np.float32), (0, 0), 2)
    copy = ImageOps.mirror(Image.fromarray(base[10:90, 12:92].astype(np.uint8)).rotate(5, resample=Image.BILINEAR))
    pool_sq, pool_size = _sq(copy)
    pool = restore(pool_sq, pool_size, g.coarse, g.highpass)
    refs = [Image.fromarray(base.astype(np.uint8))] + [Image.fromarray(cv2.GaussianBlur(
        (rng.random((96, 96)) * 255).astype(np.float32), (0, 0), 2).astype(np.uint8)) for _ in range(3)]
    stacks, want = [], []
    for r in refs:
        sq, size = _sq(r)
        ref = restore(sq, size, g.coarse, g.highpass)
        images = np.stack([_rotated(ref, a) for a in g.angles])
        stacks.append(_Rotations(images, np.fft.rfft2(images)))
        best, cell = -1.0, ()
        for angle, image in zip(g.angles, images, strict=True):
            for cov, flip in [(c, f) for f in (False, True) for c in g.coverages]:
                t = _template(pool, pool_size, image.shape, cov, flip, g.inner)
                if t is not None:
                    score = float(cv2.matchTemplate(image, t, cv2.TM_CCOEFF_NORMED).max())
                    if score > best:
                        best, cell = score, (cov, flip, angle)
        want.append((best, cell))
    scores, cells = _coarse(pool, pool_size, stacks, stacks[0].images.shape[1:], g)
    assert np.allclose(scores, [b for b, _ in want], atol=1e-4)
    assert cells == [c for _, c in want]
    assert cells[0][1] and int(np.argmax(scores)) == 0  # the mirrored copy's source, found mirrored


def test_edited_photo_copies_align_with_their_source_only(tmp_path: Path) -> None:
    fx = write_photo_fixture(tmp_path)
    names = [Path(r).stem for r in fx["ref"]]
    refs = [_sq(_photo(tmp_path, n)) for n in names]
    aligner = Aligner()
    src = _photo(tmp_path, "astronaut")
    w, h = src.size
    edits = {
        "crop 75 % + jpeg": src.crop((int(0.2 * w), int(0.1 * h), int(0.95 * w), int(0.85 * h))),
        "rotate 7 deg": src.rotate(7, resample=Image.BILINEAR),
        "mirror + rotate -9 deg": ImageOps.mirror(src).rotate(-9, resample=Image.BILINEAR),
        "crop 80 % + darker + half size": ImageEnhance.Brightness(
            src.crop((0, int(0.2 * h), int(0.8 * w), h))).enhance(0.7).resize((int(0.4 * w), int(0.4 * h))),
    }
    for name, img in edits.items():
        s = aligner.scores(*_sq(img), refs)
        assert int(np.argmax(s)) == names.index("astronaut"), name
        rest = np.delete(s, names.index("astronaut"))
        assert s.max() >= 0.85 and (1 - rest.max()) / (1 - s.max()) >= 3, (name, s)
    # unrelated photographs: nothing close
    for other in fx["others"]:
        with Image.open(tmp_path / other) as f:
            s = aligner.scores(*_sq(f.convert("RGB")), refs)
        assert s.max() < 0.8, (other, s)


def test_small_images_rotated_and_cropped_copy_finds_its_source() -> None:
    images, _ = fmnist(40)
    refs = [(square(a), (28, 28)) for a in images]
    src = Image.fromarray(images[7])
    copy = ImageOps.mirror(src.rotate(8, resample=Image.BILINEAR)).crop((2, 1, 27, 26)).resize((36, 36))
    s = Aligner().scores(*_sq(copy), refs)
    assert int(np.argmax(s)) == 7 and s[7] >= 0.9


def test_align_verdicts_same_with_forked_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssld.mining.verify as verify_mod
    from ssld.mining.dedup import align_verdicts, search

    fx = write_photo_fixture(tmp_path)
    pool = [str(tmp_path / c) for c in fx["copies"] + fx["others"]]
    ref = [str(tmp_path / r) for r in fx["ref"]]
    nb = search(pool, ref, None, None, workers=0, progress=False)
    one = align_verdicts(nb, Thresholds(), workers=1)
    monkeypatch.setattr(verify_mod, "PARALLEL_MIN", 1)
    two = align_verdicts(nb, Thresholds(), workers=2)
    assert [(m.pool, m.ref, m.score, m.margin) for m in one] == [(m.pool, m.ref, m.score, m.margin) for m in two]
    # every edited copy's best aligned reference is its source
    best = {m.pool: ref[m.ref] for m in one}
    assert all(best.get(i) == str(tmp_path / s) for i, s in enumerate(fx["copy_source"]))


def test_sift_checks_only_what_the_alignment_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIFT costs ~100x an alignment: the defaults run it only on pool images the alignment did not accept and
    whose best aligned NCC reaches ``sift_align_gate``; with the alignment off, on every large candidate."""
    import ssld.mining.verify as verify_mod
    from ssld.mining.dedup import align_verdicts, decide, search

    fx = write_photo_fixture(tmp_path)
    pool = [str(tmp_path / c) for c in fx["copies"] + fx["others"]]
    ref = [str(tmp_path / r) for r in fx["ref"]]
    nb = search(pool, ref, None, None, workers=0, progress=False)
    seen: list[int] = []
    real = verify_mod._verify

    def spy(tasks, *a, **k):
        seen.extend(i for i, _ in tasks)
        return real(tasks, *a, **k)

    monkeypatch.setattr(verify_mod, "_verify", spy)
    th = Thresholds()
    align = align_verdicts(nb, th)
    accepted = {m.pool for m in decide(nb, th, align=align) if m.method == "align"}
    below = {m.pool for m in align if m.score < th.sift_align_gate}
    assert accepted and below  # copies accepted, unrelated photos far below the gate
    matches = decide(nb, th, pool, ref, align=align)
    assert not set(seen) & (accepted | below)
    assert {m.pool for m in matches} == set(range(len(fx["copies"])))
    seen.clear()
    decide(nb, Thresholds(align_min=2.0, sift_align_gate=-2.0, noise_min=2.0), pool, ref, align=align)
    assert set(seen) >= accepted  # alignment (and grain) off: SIFT sees every large candidate again


def test_hires_check_scores_the_source_above_a_look_alike() -> None:
    """At 128 px, a rotated copy still matches its source at the cell the 64 px search found; another crop of
    the same photograph (same light, same texture) does not."""
    import skimage.data

    photo = Image.fromarray(skimage.data.coffee()).convert("L")  # 600 x 400
    src, other = photo.crop((40, 40, 240, 240)), photo.crop((300, 150, 500, 350))
    copy = src.rotate(6, resample=Image.BILINEAR).crop((15, 10, 185, 180))
    aligner = Aligner()
    cells: list = []
    s = aligner.scores(*_sq(copy), [_sq(src), _sq(other)], cells=cells)
    assert int(np.argmax(s)) == 0 and len(cells) == 2
    hr = aligner.hires(np.asarray(copy), [np.asarray(src), np.asarray(other)], cells)
    th = Thresholds()
    assert hr[0] >= th.align_min and (1 - hr[1]) / (1 - hr[0]) >= th.align_ratio, hr


def test_small_images_are_not_aligned_while_their_rule_is_off(tmp_path: Path) -> None:
    """With ``align_small_min`` above 1 no small pair can pass, so none is aligned (Fashion-MNIST's 60k x 10k took
    394 s with them, 28 s without); with the rule on they are."""
    from ssld.mining.dedup import align_tasks, search

    images, _ = fmnist(12)
    for i, a in enumerate(images):
        Image.fromarray(a).save(tmp_path / f"{i}.png")
    ref = [str(tmp_path / f"{i}.png") for i in range(8)]
    pool = [str(tmp_path / f"{i}.png") for i in range(8, 12)]
    nb = search(pool, ref, None, None, workers=0, progress=False, thumb_knn=True)
    assert align_tasks(nb, Thresholds()) == []
    on = align_tasks(nb, Thresholds(align_small_min=0.9, align_cand=-1.0))
    assert [i for i, _ in on] == [0, 1, 2, 3] and all(refs for _, refs in on)
