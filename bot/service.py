"""Wiring from config to the working parts: embedder, loaded index, searcher, answer composer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from embeddings import Embedder, make_embedder
from retriever.fetch import FetchLimits
from retriever.index import Index, IndexDir, IndexSettings
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


@dataclass
class Service:
    index: Index
    searcher: HybridSearcher
    composer: AnswerComposer

    @property
    def generation(self) -> str:
        return self.index.generation


def open_service(config: dict, index_dir: str | Path | None = None, embedder: Embedder | None = None,
                 reuse: Index | None = None) -> Service:
    """`reuse`: the index served so far, whose segments the new generation may share."""
    embedder = embedder or build_embedder(config)
    root = IndexDir(index_dir or config["index"]["dir"])
    index = Index(root.current_path(), embedder.name, embedder.dim, reuse=reuse)
    searcher = HybridSearcher(index, embedder, alpha=float(config["search"]["alpha"]),
                              candidates=int(config["search"]["candidates"]),
                              context=float(config["search"]["context"]))
    composer = AnswerComposer(searcher, top_k=int(config["answer"]["top_k"]),
                              min_confidence=float(config["answer"]["min_confidence"]))
    return Service(index, searcher, composer)
