"""sentence-transformers backend: any model name or local path the user has (install '.[st]')."""

from __future__ import annotations

import numpy as np

from . import l2_normalise


class SentenceTransformerEmbedder:
    def __init__(self, model: str, device: str = "cpu", batch_size: int = 32):
        if not model:
            raise ValueError("the sentence-transformers embedder needs a model name or local path (embedder.model)")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError("sentence-transformers is not installed: pip install 'govqa[st]'") from exc
        self._model = SentenceTransformer(model, device=device)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise ValueError(f"model {model!r} does not report its embedding dimension")
        self.dim = int(dim)
        self.name = f"sentence-transformers:{model}"
        self._batch_size = batch_size
        self.symmetric = True  # embed_query is embed_documents of one text

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            list(texts), batch_size=self._batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return l2_normalise(vectors)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encode(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text])[0]
