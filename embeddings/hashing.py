"""A deterministic bag-of-character-n-grams embedder: no model, no downloads, for fast tests."""

from __future__ import annotations

import hashlib
import unicodedata

import numpy as np

from . import l2_normalise


class HashingEmbedder:
    def __init__(self, dim: int = 256):
        if not isinstance(dim, int) or dim < 8:
            raise ValueError(f"hashing embedder dim must be an integer >= 8, got {dim!r}")
        self.dim = dim
        self.name = f"hashing-{dim}"
        self.symmetric = True  # embed_query is embed_documents of one text

    def _vector(self, text: str) -> np.ndarray:
        text = unicodedata.normalize("NFKC", text)
        vec = np.zeros(self.dim, dtype=np.float32)
        grams = [text[i : i + n] for n in (1, 2) for i in range(len(text) - n + 1)]
        for gram in grams:
            digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
            h = int.from_bytes(digest, "little")
            vec[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        return vec

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.stack([self._vector(t) for t in texts]))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]
