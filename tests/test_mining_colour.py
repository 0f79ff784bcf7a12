"""Colour signatures and the two dedup rules that use them: the ``colour`` rule (copies of crops with little
detail, told apart from other crops of the same sky by colour) and the hue veto (one shape in two colours)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from helpers.photos import _photo
from PIL import Image, ImageEnhance

from ssld.mining.colour import WIDTH, colour_signature, delta_e, hue_agreement
from ssld.mining.dedup import Match, align_verdicts, decide, search
from ssld.mining.rules import Thresholds, hue_kept


def _sig(img: Image.Image) -> np.ndarray:
    return colour_signature(np.asarray(img.convert("RGB")))


def test_signature_keeps_hue_through_brightness_and_saturation_and_sees_a_recoloured_copy() -> None:
    photo = _photo("coffee")
    base = _sig(photo)
    assert base.shape == (WIDTH,) and abs(float(base[3:-1].sum()) - 1) < 1e-5
    edited = ImageEnhance.Color(ImageEnhance.Brightness(photo).enhance(1.25)).enhance(0.6)
    assert delta_e(base, _sig(edited)) > 5  # a visible colour change...
    assert hue_agreement(base, _sig(edited)) > 0.9  # ...that keeps the hues
    hsv = np.asarray(photo.convert("HSV")).copy()
    hsv[..., 0] += 128  # hue turned half-way round
    assert hue_agreement(base, _sig(Image.fromarray(hsv, "HSV").convert("RGB"))) < 0.3
    grey = _sig(photo.convert("L"))
    assert np.isnan(hue_agreement(base, grey)) and np.isnan(hue_agreement(grey, grey))  # no hue to compare
    assert colour_signature(np.asarray(photo.convert("L"))).shape == (WIDTH,)  # 2-D input too


def _sky(angle_deg: float, rgb_top: tuple[float, float, float], size: int = 160) -> Image.Image:
    """A smooth two-colour gradient with a faint vignette: a crop of sky with no detail to align or match."""
    y, x = np.mgrid[0:size, 0:size] / size - 0.5
    a = np.deg2rad(angle_deg)
    t = (x * np.cos(a) + y * np.sin(a) + 0.5)[..., None]
    top, bottom = np.array(rgb_top), np.array([235.0, 240.0, 245.0])
    img = top * (1 - t) + bottom * t - 25 * (x**2 + y**2)[..., None]
    return Image.fromarray(np.uint8(np.clip(img, 0, 255)))


def test_colour_rule_tells_a_copy_of_a_smooth_crop_from_crops_of_the_same_sky(tmp_path: Path) -> None:
    """Four crops of one sky: almost the same gradient, slightly different blues. A JPEG copy of the first has
    no detail for the alignment or SIFT and a thumbnail no clearer than its neighbours' (the smooth rule stays
    silent), but its colour matches its source alone (``colour``). A crop coloured between two references stays;
    so does everything without colour signatures."""
    blues = [(60, 110, 200), (75, 125, 205), (90, 140, 210), (105, 150, 215)]
    ref = []
    for k, (angle, blue) in enumerate(zip((90, 92, 94, 96), blues, strict=True)):
        ref.append(str(tmp_path / f"ref{k}.png"))
        _sky(angle, blue).save(ref[-1])
    Image.open(ref[0]).save(tmp_path / "copy.jpg", quality=85)
    _sky(91, (67, 117, 202)).save(tmp_path / "between.png")  # between ref0's and ref1's blue
    pool = [str(tmp_path / "copy.jpg"), str(tmp_path / "between.png")]
    nb = search(pool, ref, None, None, workers=0, progress=False)
    th = Thresholds()
    align = align_verdicts(nb, th, pool_files=pool, ref_files=ref)
    assert nb.desc_ref[0, 0] == 0 and nb.desc_sim[0, 0] >= th.colour_thumb
    matches = decide(nb, th, pool, ref, align=align)
    assert [(m.pool, m.ref, m.method) for m in matches] == [(0, 0, "colour")]
    assert matches[0].margin >= th.colour_ratio
    assert decide(replace(nb, pool_colour=None, ref_colour=None), th, pool, ref, align=align) == []
    assert decide(nb, Thresholds(colour_de=0.0), pool, ref, align=align) == []  # the rule off


def test_hue_veto_drops_a_match_whose_hues_disagree_unless_sift_made_it(tmp_path: Path) -> None:
    photo = _photo("astronaut", 128)
    hsv = np.asarray(photo.convert("HSV")).copy()
    hsv[..., 0] += 128
    paths = {"ref.png": photo, "other.png": _photo("coffee", 128),
             "recoloured.png": Image.fromarray(hsv, "HSV").convert("RGB"),
             "jittered.png": ImageEnhance.Color(ImageEnhance.Brightness(photo).enhance(0.8)).enhance(1.4),
             "grey.png": photo.convert("L")}
    for name, img in paths.items():
        img.save(tmp_path / name)
    ref = [str(tmp_path / "ref.png"), str(tmp_path / "other.png")]
    pool = [str(tmp_path / n) for n in ("recoloured.png", "jittered.png", "grey.png")]
    nb = search(pool, ref, None, None, workers=0, progress=False)
    th = Thresholds()
    matches = [Match(i, 0, method, 0.95, 10.0) for i in range(3) for method in ("align", "sift")]
    kept = hue_kept(nb, matches, th)
    assert [(m.pool, m.method) for m in kept] == [(0, "sift"), (1, "align"), (1, "sift"), (2, "align"), (2, "sift")]
    assert hue_kept(nb, matches, Thresholds(hue_min=0.0)) == matches
