"""Wiring from config to the working parts: embedder, loaded index, searcher, answer composer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from embeddings import Embedder, make_embedder
from retriever.backend import EmbeddedBackend, SearchBackend
from retriever.fetch import FetchLimits
from retriever.index import Index, IndexDir, IndexSettings, NoIndexError
from retriever.ocr import OcrLimits
from retriever.search import HybridSearcher

from .answer import AnswerComposer


def build_embedder(config: dict) -> Embedder:
    e = config["embedder"]
    return make_embedder(e["name"], model=e.get("model", ""), dim=int(e.get("dim", 256)), workers=int(e.get("workers", 0)))


def index_settings(config: dict) -> IndexSettings:
    s, i = config["search"], config["index"]
    return IndexSettings(exact_max=s["faiss_exact_max"], ann=s["faiss_ann"], ivf_lists=s["ivf_lists"], ivf_probe=s["ivf_probe"],
                         hnsw_m=s["hnsw_m"], hnsw_ef_construction=s["hnsw_ef_construction"],
                         hnsw_ef_search=s["hnsw_ef_search"], max_deltas=i["max_deltas"], delta_share=i["delta_share"])


def ingest_options(config: dict) -> dict:
    """What every ingest (CLI, watcher, upload, URLs) takes from the settings."""
    o, f = config["ocr"], config["fetch"]
    return {"keep_generations": int(config["index"]["keep_generations"]), "settings": index_settings(config),
            "max_expanded": int(config["limits"]["max_expanded_mb"] * 2**20),
            "ocr": OcrLimits(max_pages=int(o["max_pages"]), max_seconds=float(o["max_seconds"]),
                             min_confidence=float(o["min_confidence"])),
            "fetch": FetchLimits(timeout_seconds=float(f["timeout_seconds"]), max_seconds=float(f["max_seconds"]),
                                 max_bytes=int(f["max_mb"] * 2**20), max_redirects=int(f["max_redirects"]))}


MILVUS_TOKEN_ENV = "GOVQA_MILVUS_TOKEN"  # a secret: from the environment only, never from config.toml


def milvus_store(config: dict):
    """The Milvus generations of search.backend = "milvus" (retriever/milvus.py)."""
    from retriever.milvus import MilvusStore

    m = config["milvus"]
    return MilvusStore(m["uri"], token=os.environ.get(MILVUS_TOKEN_ENV, ""), prefix=m["prefix"],
                       timeout=float(m["timeout_seconds"]))


class Source:
    """Where the served generations come from: the index directory's CURRENT pointer (embedded),
    or the alias in Milvus. `current()` names the generation to serve (None before the first
    ingest); for Milvus it also checks that the server answers (BackendUnavailable)."""

    def __init__(self, config: dict, index_dir: str | Path | None = None):
        self.backend = config["search"].get("backend", "embedded")
        self.root = IndexDir(index_dir or config["index"]["dir"])
        self.store = milvus_store(config) if self.backend == "milvus" else None

    def where(self) -> str:
        return self.store.uri if self.store is not None else str(self.root.root)

    def current(self) -> str | None:
        return self.store.current() if self.store is not None else self.root.current()

    def open(self, generation: str, embedder: Embedder, config: dict, reuse: SearchBackend | None = None) -> SearchBackend:
        if self.store is not None:
            from retriever.milvus import MilvusBackend

            return MilvusBackend(self.store, generation, embedder.name, embedder.dim, index_settings(config),
                                 reuse=reuse if isinstance(reuse, MilvusBackend) else None)
        previous = reuse.index if isinstance(reuse, EmbeddedBackend) else None
        return EmbeddedBackend(Index(self.root.generations / generation, embedder.name, embedder.dim, reuse=previous))


def run_ingest(config: dict, paths, embedder: Embedder, index_dir: str | Path | None = None, **kwargs):
    """An ingest (retriever/ingest.py's arguments) into the configured backend: the index
    directory, or a new Milvus generation published by its alias."""
    options = ingest_options(config) | kwargs
    source = Source(config, index_dir)
    if source.store is not None:
        from retriever.milvus import ingest_milvus

        return ingest_milvus(source.store, paths, embedder, downloads_in=source.root.root, **options)
    from retriever.ingest import ingest

    return ingest(source.root.root, paths, embedder, **options)


@dataclass
class Service:
    index: SearchBackend
    searcher: HybridSearcher
    composer: AnswerComposer

    @property
    def generation(self) -> str:
        return self.index.generation


def open_service(config: dict, index_dir: str | Path | None = None, embedder: Embedder | None = None,
                 reuse: SearchBackend | None = None, source: Source | None = None) -> Service:
    """`reuse`: the index served so far, whose segments the new generation may share."""
    embedder = embedder or build_embedder(config)
    source = source or Source(config, index_dir)
    generation = source.current()
    if generation is None:
        raise NoIndexError(f"no index in {source.where()}: run govqa ingest PATH... first")
    index = source.open(generation, embedder, config, reuse)
    searcher = HybridSearcher(index, embedder, alpha=float(config["search"]["alpha"]),
                              candidates=int(config["search"]["candidates"]),
                              context=float(config["search"]["context"]))
    composer = AnswerComposer(searcher, top_k=int(config["answer"]["top_k"]),
                              min_confidence=float(config["answer"]["min_confidence"]))
    return Service(index, searcher, composer)
