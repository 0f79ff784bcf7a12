"""The dedup decision rules and their thresholds (plain numpy, no heavy imports: the CLI reads the defaults).

A pool image is a copy of reference r by a rule when r is its best match under that rule's score AND r is
clearly ahead of the second-best *distinct* reference (the margin). At low resolution many different items
look alike, so the margin, not the raw similarity, separates "same photo" from "same kind of thing".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from ssld.mining.dedup import Neighbours


@dataclass
class Thresholds:
    """Decision rule parameters (defaults chosen on the Fashion-MNIST and photo planted-copy benchmarks, whose
    curves are in docs/mining.md)."""

    hash_max: int = 10
    hash_margin: int = 8
    sim_min: float = 0.90
    sim_margin: float = 0.03
    sift_min_size: int = 64
    sift_cand_sim: float = 0.5
    sift_cand_hash: int = 44
    sift_min_inliers: int = 8
    k: int = 5
    thumb_cand: float = 0.6  # global-descriptor similarity from which a large pool image goes to SIFT
    thumb_min: float = 1.01  # global-descriptor rule for small images (> 1: off; docs/mining.md has the curve)
    thumb_margin: float = 0.02
    # aligned NCC (ssld/mining/align.py) of the shortlisted references: a copy when the best scores at least
    # align_min and is align_ratio times closer (1 - NCC) than the next candidate (docs/mining.md has the curves)
    align_min: float = 0.80
    align_ratio: float = 5.0
    # ... and its peak must stand out from the same reference shifted by more than 3 px (at 64 px) by this
    # ratio: a ridge (one straight edge, stripes) fits along itself, a broad peak (smooth or blurred
    # content) still stands out (docs/mining.md: min(ratio, peak) >= 5 cost 3 points of recall)
    align_peak: float = 1.5
    align_cand: float = 0.5  # thumbnail similarity from which a pool image is aligned (or the SIFT gates)
    align_k: int = 5  # thumbnail neighbours aligned per pool image (plus the hash's and embedding's best two)
    align_small_min: float = 1.01  # align_min where pool image or reference is under sift_min_size (> 1: off)
    sift_align_gate: float = 0.5  # SIFT only checks a pool image whose best aligned NCC reaches this (its cost)
    align_hires_gate: float = 0.5  # an ambiguous alignment (NCC >= this, ratio short) is redone at 128 px (> 1: off)
    # a large image with no detail to align (flat once high-passed) is a copy when its thumbnail matches the
    # best reference this well and smooth_ratio times closer (1 - similarity) than the next (docs/mining.md)
    smooth_min: float = 0.995
    smooth_ratio: float = 4.0
    # a large image is a copy of its best thumbnail match (similarity >= colour_thumb) when the colours of
    # their centres differ by at most colour_de (CIE76 delta E) and every other shortlisted reference's by
    # colour_ratio times more (ssld/mining/colour.py, docs/mining.md)
    colour_thumb: float = 0.98
    colour_de: float = 1.0
    colour_ratio: float = 5.0
    # a match (other than SIFT's) whose hue histograms share less than this (Bhattacharyya) is not a copy
    hue_min: float = 0.3
    # a large pool image the alignment did not accept is a copy when its grain (ssld/mining/noise.py) correlates
    # with the best candidate's at noise_min or more and noise_ratio times more than with the next one's
    noise_min: float = 0.35
    noise_ratio: float = 4.0


# each option's inclusive (low, high) range, by ``ssld dedup`` option name (None: open)
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "hash_max": (0, 128), "hash_margin": (0, 128), "sim_min": (-1, 1), "sim_margin": (0, 2),
    "sift_min_size": (1, None), "sift_cand_sim": (-1, 1.01), "sift_cand_hash": (0, 128),
    "sift_min_inliers": (1, None), "knn": (1, None), "thumb_cand": (-1, 1.01), "thumb_min": (-1, None),
    "thumb_margin": (0, 2), "align_min": (-1, 1.01), "align_ratio": (1, None), "align_peak": (1, None),
    "align_cand": (-1, 1.01), "align_k": (1, None), "align_small_min": (-1, 1.01), "sift_align_gate": (-1, 1),
    "align_hires_gate": (-1, None), "smooth_min": (-1, 1.01), "smooth_ratio": (1, None),
    "colour_thumb": (-1, 1.01), "colour_de": (0, None), "colour_ratio": (1, None), "hue_min": (0, 1),
    "noise_min": (-1, 1.01), "noise_ratio": (1, None),
}


def option_names() -> dict[str, str]:
    """``ssld dedup`` option name (``knn``, ``sim_min``...) -> Thresholds field (``k``, ``sim_min``...)."""
    return {("knn" if f.name == "k" else f.name): f.name for f in fields(Thresholds)}


def thresholds_from(values: Mapping[str, Any], where: str = "") -> Thresholds:
    """Thresholds from values named like ``ssld dedup``'s options (``knn`` for ``k``); other names are left out.
    Each value becomes its field's type (int or float) and must lie in its :data:`BOUNDS`; one that does not is
    a one-line error at ``where + name``."""
    import math

    from ssld.errors import UserError, describe_range

    out: dict[str, Any] = {}
    defaults = Thresholds()
    for name, field in option_names().items():
        if name not in values or values[name] is None:
            continue
        kind = type(getattr(defaults, field))
        value = values[name]
        try:
            if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
                raise ValueError
            out[field] = kind(value)
        except (TypeError, ValueError):
            raise UserError(f"{where}{name}: must be {'an integer' if kind is int else 'a number'}, "
                            f"got {value!r}") from None
        low, high = BOUNDS[name]
        v = out[field]
        if not math.isfinite(v) or (low is not None and v < low) or (high is not None and v > high):
            raise UserError(f"{where}{name}: must be {describe_range(low, high)}, got {value!r}")
    return Thresholds(**out)


def desc_hits(nb: Neighbours, th: Thresholds) -> np.ndarray:
    """Per pool image: does the global-descriptor rule fire (best reference similar enough and clearly ahead)."""
    import numpy as np

    g1, g2 = nb.desc_sim[:, 0], nb.desc_sim[:, 1]
    with np.errstate(invalid="ignore"):
        return (g1 >= th.thumb_min) & (g1 - g2 >= th.thumb_margin) & (nb.desc_ref[:, 0] >= 0) & nb.pool_ok


def thumb_ratio(nb: Neighbours) -> np.ndarray:
    """Per pool image: how many times closer (1 - thumbnail similarity) its best reference is than the second."""
    import numpy as np

    g1, g2 = nb.desc_sim[:, 0], np.maximum(nb.desc_sim[:, 1], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (1 - g2) / np.maximum(1 - g1, 1e-6)


def smooth_hits(nb: Neighbours, th: Thresholds) -> np.ndarray:
    """Per pool image: does the thumbnail match its best reference at ``smooth_min`` or more, ``smooth_ratio``
    times closer than the second-best reference (the rule for images too smooth to align)."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        return ((nb.desc_sim[:, 0] >= th.smooth_min) & (thumb_ratio(nb) >= th.smooth_ratio)
                & (nb.desc_ref[:, 0] >= 0) & nb.pool_ok)


def colour_hits(nb: Neighbours, th: Thresholds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pool image: does the colour rule fire (:class:`Thresholds` ``colour_*``), the colour difference to its
    best thumbnail match, and how many times larger the nearest other shortlisted reference's is. Nothing fires
    without colour signatures."""
    import numpy as np

    from ssld.mining.colour import DE_FLOOR, delta_e

    n = len(nb.pool_ok)
    if nb.pool_colour is None or nb.ref_colour is None:
        return np.zeros(n, bool), np.full(n, np.inf), np.zeros(n)
    refs = nb.desc_ref
    de = delta_e(nb.pool_colour[:, None], nb.ref_colour[np.maximum(refs, 0)])  # [n, k]
    de = np.where(refs >= 0, de, np.inf)
    others = de[:, 1:].min(axis=1) if de.shape[1] > 1 else np.full(n, np.inf)
    with np.errstate(invalid="ignore"):
        ratio = others / np.maximum(de[:, 0], DE_FLOOR)
        hit = ((nb.desc_sim[:, 0] >= th.colour_thumb) & (de[:, 0] <= th.colour_de) & (ratio >= th.colour_ratio)
               & (refs[:, 0] >= 0) & nb.pool_ok)
    return hit, de[:, 0], np.minimum(ratio, 100.0)


def hue_kept(nb: Neighbours, matches: list, th: Thresholds) -> list:
    """The matches that SIFT made or whose two images share hues (``hue_min``; grey images always pass)."""
    from ssld.mining.colour import hue_agreement

    if nb.pool_colour is None or nb.ref_colour is None or not matches:
        return matches
    judged = [m for m in matches if m.method != "sift"]
    bc = hue_agreement(nb.pool_colour[[m.pool for m in judged]], nb.ref_colour[[m.ref for m in judged]])
    vetoed = {id(m) for m, b in zip(judged, bc, strict=True) if b < th.hue_min}
    return [m for m in matches if id(m) not in vetoed]


def noise_hits(match: Any, th: Thresholds) -> bool:
    """Grain rule on one :func:`ssld.mining.verify.noise_verdicts` Match (score = NCC, margin = ratio to the next
    candidate)."""
    return match.score >= th.noise_min and match.margin >= th.noise_ratio


def align_hits(scores: np.ndarray, ratios: np.ndarray, small: np.ndarray, th: Thresholds,
               peaks: np.ndarray | float = 100.0) -> np.ndarray:
    """Aligned-NCC rule on per-verdict scores and distance ratios ``(1 - next NCC) / (1 - best NCC)``: like
    Lowe's ratio test, a copy is much closer to its source than to anything else, however similar the rest.
    ``peaks`` (peak ratios against shifted positions) must reach ``align_peak``. ``small`` pairs (an image
    under ``sift_min_size``) need ``align_small_min``."""
    import numpy as np

    return ((scores >= np.where(small, th.align_small_min, th.align_min)) & (ratios >= th.align_ratio)
            & (peaks >= th.align_peak))


def rule_hits(nb: Neighbours, th: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Per pool image: does the hash rule fire, does the embedding rule fire (best match clearly ahead)."""
    import numpy as np

    d1, d2 = nb.hash_dist[:, 0], nb.hash_dist[:, 1]
    s1, s2 = nb.emb_sim[:, 0], nb.emb_sim[:, 1]
    with np.errstate(invalid="ignore"):  # missing neighbours are +-inf; inf - inf is no hit
        hash_hit = (d1 <= th.hash_max) & (d2 - d1 >= th.hash_margin) & (nb.hash_ref[:, 0] >= 0)
        emb_hit = (s1 >= th.sim_min) & (s1 - s2 >= th.sim_margin) & (nb.emb_ref[:, 0] >= 0)
    return hash_hit & nb.pool_ok, emb_hit & nb.pool_ok
