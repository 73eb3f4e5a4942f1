"""Text -> vectors. Knows nothing of reports or bots.

Every backend returns float32, L2-normalised rows, so inner product is cosine similarity.
Backends are chosen by name; heavy imports happen only when a backend is built.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Embedder", "make_embedder", "EMBEDDER_NAMES", "l2_normalise"]


@runtime_checkable
class Embedder(Protocol):
    name: str  # identifies the model: an index built with one embedder refuses another
    dim: int
    # a query is embedded as a document would be (embed_query(t) equals embed_documents([t])[0]), so
    # a query and documents compared with it can share one batch (one model call instead of two)
    symmetric: bool

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


EMBEDDER_NAMES = ("use-multilingual", "sentence-transformers", "hashing")


def make_embedder(name: str, model: str = "", dim: int = 256, device: str = "cpu", workers: int = 0) -> Embedder:
    """Build the backend called `name`; `model` is for sentence-transformers, `dim` for hashing,
    `workers` (processes for large batches, 0: one a core) for use-multilingual."""
    if name == "use-multilingual":
        from .use import USEEmbedder

        return USEEmbedder(workers=workers)
    if name == "sentence-transformers":
        from .st import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model, device=device)
    if name == "hashing":
        from .hashing import HashingEmbedder

        return HashingEmbedder(dim=dim)
    raise ValueError(f"unknown embedder {name!r}: choose one of {', '.join(EMBEDDER_NAMES)}")
