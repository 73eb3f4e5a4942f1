"""The service a long-running front end answers from, kept on the index's current generation.

A request takes `live.get()` once and uses that snapshot to the end, so it finishes on the
generation it started with; a watcher thread notices when the CURRENT pointer (or, with the Milvus
backend, the alias) moves (an ingest by any process) and swaps in the new generation, loaded beside
the old one. With Milvus the watcher also notices the server going away: `get()` then raises
NotReadyError naming the backend (503), until a later poll finds it back, with no restart."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from embeddings import Embedder
from retriever.backend import BackendUnavailable
from retriever.index import NoIndexError

from .service import Service, Source, build_embedder, open_service

log = logging.getLogger("govqa.live")


class NotReadyError(RuntimeError):
    pass


class LiveService:
    def __init__(self, config: dict, index_dir: str | Path | None = None, embedder: Embedder | None = None,
                 poll_seconds: float = 2.0):
        self.config = config
        self.source = Source(config, index_dir)
        self.root = self.source.root
        self._embedder = embedder
        self.poll_seconds = poll_seconds
        self._service: Service | None = None
        self._problem = "the index is loading"
        self._unavailable = ""  # why the search backend cannot be reached, while it cannot
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = build_embedder(self.config)
        return self._embedder

    def get(self) -> Service:
        service, unavailable = self._service, self._unavailable
        if unavailable:
            raise NotReadyError(unavailable)
        if service is None:
            raise NotReadyError(self._problem)
        return service

    @property
    def problem(self) -> str:
        return self._unavailable or self._problem

    def unavailable(self, exc: BackendUnavailable) -> None:
        """A request met the backend unavailable: say so (503) until a poll finds it back."""
        self._unavailable = str(exc)

    def reload(self) -> str | None:
        """Load the current generation if it is not the one being served; returns the generation
        served afterwards. A generation that fails to load is logged and the old one kept."""
        with self._reload_lock:
            try:
                current = self.source.current()
                if current is None:
                    raise NoIndexError(f"no index in {self.source.where()}: run `govqa ingest REPORTS` or upload reports")
                if self._service is None or self._service.generation != current:
                    service = open_service(self.config, embedder=self.embedder, source=self.source,
                                           reuse=self._service.index if self._service else None)
                    previous = self._service.generation if self._service else None
                    self._service = service
                    self._problem = ""
                    log.info("serving index generation %s (was %s): %d reports, %d passages",
                             service.generation, previous, len(service.index.reports), service.index.size)
                if self._unavailable:
                    log.info("the %s search backend is back", self.source.backend)
                self._unavailable = ""
            except BackendUnavailable as exc:  # answer 503 until it is back
                if not self._unavailable:
                    log.error("%s", exc)
                self._unavailable = str(exc)
            except Exception as exc:  # keep serving what we have; say why in /readyz
                if self._service is None:
                    self._problem = str(exc)
                log.error("could not load the index generation: %s", exc)
            return self._service.generation if self._service else None

    def start(self) -> None:
        """Load now (in the background) and follow the pointer every poll_seconds."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="govqa-index-watch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.reload()
            self._stop.wait(self.poll_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
