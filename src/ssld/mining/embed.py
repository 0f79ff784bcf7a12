"""Teacher embeddings (globally pooled features before the classifier, L2-normalised) and cosine kNN in faiss.

Embeddings tolerate crops, small rotations and colour changes that break perceptual hashes. References are
embedded as is and mirrored (test-time flip) and both go into the index, so mirrored copies match as well.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ssld.data.store import SoftLabelStore
from ssld.errors import UserError
from ssld.mining.hashing import best_per_ref


def pooled_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``forward_head(forward_features(x), pre_logits=True)``: timm's pooled pre-classifier features."""
    if not (hasattr(model, "forward_features") and hasattr(model, "forward_head")):
        raise UserError(f"teacher {type(model).__name__}: needs timm's forward_features/forward_head for embeddings")
    return model.forward_head(model.forward_features(x), pre_logits=True)


def embed_files(model: nn.Module, files: Sequence[str], transform, mirrored: bool = False,
                batch_size: int = 128, workers: int = 2, device: str | torch.device = "cpu",
                amp_dtype: torch.dtype | None = None, desc: str = "embed",
                progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised embeddings ``[n, v, d]`` (v = 2 with the mirrored view) and a readable mask ``[n]``."""
    from ssld.data import ImageListDataset, Sample, collate

    device = torch.device(device)
    model = model.to(device).eval()
    ds = ImageListDataset([Sample(f, -1) for f in files], transform)
    loader = DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate,
                        pin_memory=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    feats: np.ndarray | None = None
    ok = np.zeros(len(files), bool)
    with torch.inference_mode(), tqdm(total=len(files), unit="img", desc=desc, disable=not progress,
                                      dynamic_ncols=True) as bar:
        for batch in loader:
            bar.update(len(batch["index"]) + len(batch["bad"]))
            if not len(batch["index"]):
                continue
            x = batch["image"].to(device, non_blocking=True)
            views = [x, torch.flip(x, dims=[3])] if mirrored else [x]
            with autocast:
                out = torch.stack([pooled_features(model, v).float() for v in views], dim=1)
            out = nn.functional.normalize(out, dim=-1).cpu().numpy()
            if feats is None:
                feats = np.zeros((len(files), len(views), out.shape[-1]), np.float32)
            rows = batch["index"].numpy()
            feats[rows], ok[rows] = out, True
    if feats is None:
        feats = np.zeros((len(files), 2 if mirrored else 1, 1), np.float32)
    return feats, ok


def as_stored(emb: np.ndarray) -> np.ndarray:
    """Embeddings rounded to the store's float16, so computed and stored pool embeddings decide alike."""
    return emb.astype(np.float16).astype(np.float32)


def store_embeddings(store: SoftLabelStore, rel_paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pool embeddings ``[n, 1, d]`` read from a labeled store and a mask of the rows it holds.

    ``rel_paths`` are the pool's paths relative to the store's image root; rows it does not hold (skipped
    or never labeled) are zeros with ``False`` in the mask.
    """
    if store.embed is None:
        raise UserError(f"--store {store.root}: holds no embeddings (labeled with --no-embed, or by a teacher "
                        "without forward_features/forward_head); label again without --no-embed")
    rows = store.rows_of(list(rel_paths))
    have = rows >= 0
    out = np.zeros((len(rows), 1, store.embed.shape[1]), np.float32)
    out[have, 0] = np.asarray(store.embed[rows[have]], dtype=np.float32)
    return out, have


FLAT_MAX = 4_000_000  # indexed vectors up to which an exact (flat) or IVF index is used, HNSW beyond (building an
# HNSW graph of 1.2M vectors took ~25 min on 2 busy cores; IVF trains on a sample in seconds: docs/mining.md)
IVF_PAIRS = 2_000_000_000  # query x indexed pairs up to which a flat search is used whatever the index's size
# indexed vectors up to which the search stays exact (flat) for any number of queries: both costs grow with the
# queries, and on 360k real thumbnail descriptors (10k references x 36 views) x 33k queries the flat search took
# 15.1 s against 11.7 s for the IVF below, whose nearest reference differed from the exact one for 0.9 % of
# queries (docs/mining.md); IVF's advantage grows with sqrt(n)
FLAT_VECTORS = 1_000_000
# lists probed / HNSW search breadth: on the photo benchmark's thumbnail descriptors (53k indexed vectors)
# the nearest reference agrees with the exact search for 0.974 of queries at 16 probes, 0.997 at 64; HNSW
# 0.979 at efSearch 128, 0.995 at 512 (benchmarks/knn_index_recall.py, docs/mining.md)
IVF_NPROBE = 64
HNSW_EF_SEARCH = 512
# IVF lists hold 8-bit scalar-quantized vectors (a quarter of the bytes to scan) and the REFINE x k best are
# re-scored exactly: on 10k references x 36 views of real thumbnail descriptors, the same 5 nearest references and
# the same scores as IndexIVFFlat for all 33k queries, in 0.63x the time (1.0 lost 2 queries in 10,000)
REFINE = 2.0


def ip_index(d: int, n: int, queries: int = 0):
    """An inner-product faiss index for ``n`` vectors of width ``d`` searched by ``queries`` vectors: exact
    (flat) while ``n <= FLAT_VECTORS`` or ``queries x n <= IVF_PAIRS``; IVF beyond that up to ``FLAT_MAX`` vectors (``2 sqrt(n)`` lists of
    8-bit quantized vectors, ``IVF_NPROBE`` probed, ``REFINE`` x k candidates re-scored exactly, so the scores it
    returns are exact; needs ``train``); HNSW (32 links, ``HNSW_EF_SEARCH``) beyond ``FLAT_MAX``."""
    import faiss

    if n > FLAT_MAX:
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return index
    if n <= FLAT_VECTORS or queries * n <= IVF_PAIRS:
        return faiss.IndexFlatIP(d)
    nlist = max(16, int(2 * n ** 0.5))
    ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                        faiss.METRIC_INNER_PRODUCT)
    ivf.nprobe = IVF_NPROBE
    index = faiss.IndexRefineFlat(ivf)
    index.k_factor = REFINE
    return index


# queries searched at once: each keeps k x (reference views) hits until they collapse to k references, about
# 27 KiB per pool image at 36 views, which for a whole pool in one piece made the kNN dedup's memory peak
QUERY_BLOCK = 8192


def cosine_knn(ref: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Most similar references of each query by inner product: ``(similarity [q, k], ref id [q, k])``.

    ``ref [m, v, d]`` holds v views per reference, ``query [q, d]`` or ``[q, u, d]`` (u views per query, e.g.
    the whole image and its centre); each query keeps its best (query view, reference view) per reference.
    """
    m, v, d = ref.shape
    views = query.reshape(len(query), -1, d)
    vectors = np.ascontiguousarray(ref.reshape(m * v, d))
    index = ip_index(d, m * v, views.shape[0] * views.shape[1])
    if not index.is_trained:  # IVF: its lists (and quantizer) from a sample of the indexed vectors themselves
        import faiss

        nlist = faiss.extract_index_ivf(index).nlist
        sample = vectors[np.random.default_rng(0).permutation(len(vectors))[: 40 * nlist]]
        index.train(sample)
    index.add(vectors)
    out_s, out_r = np.empty((len(views), k), np.float32), np.empty((len(views), k), np.int64)
    for lo in range(0, len(views), QUERY_BLOCK):  # k x v hits per query view: bounded per block, not per pool
        block = views[lo : lo + QUERY_BLOCK]
        n = len(block)
        sim, idx = index.search(np.ascontiguousarray(block.reshape(-1, d)), min(k * v, m * v))
        sim, idx = sim.reshape(n, -1), idx.reshape(n, -1)  # every query view's hits side by side
        out_s[lo : lo + n], out_r[lo : lo + n] = best_per_ref(sim, np.where(idx >= 0, idx // v, -1), k,
                                                              larger_is_better=True)
    return out_s, out_r
