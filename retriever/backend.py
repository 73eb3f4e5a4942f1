"""The search-backend seam: what the hybrid searcher, the catalog, the facts and the answers need of
an index, implemented by the embedded index (one machine, this module) and by Milvus (milvus.py).
Fusion, neighbour context, unit and year resolution and answering stay above it, the same for both.

Passages are numbered by rows, 0 .. size-1, each report's passages consecutive rows (so a report is
a range of rows, and a passage's neighbours are the rows beside it)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import numpy as np

from .facts import Fact
from .index import GenerationInfo, Index
from .search import ann_top, lexical_scores
from .types import Passage, Report


class BackendUnavailable(RuntimeError):
    """The search backend cannot be reached (a Milvus server down, say); `backend` names it. A
    request that meets it fails with 503; the backend may come back without a restart."""

    def __init__(self, backend: str, detail: str):
        super().__init__(f"the {backend} search backend is unavailable: {detail}")
        self.backend = backend
        self.detail = detail


@runtime_checkable
class SearchBackend(Protocol):
    """One generation of an index, read-only, safe to share between threads."""

    backend: str  # "embedded", "milvus": named in errors
    generation: str
    reports: list[Report]  # live reports, by (source, id)
    report_by_id: dict[str, Report]
    size: int  # rows (deleted ones included, for the embedded index until its next full build)

    def rows_of(self, report_ids: Iterable[str]) -> np.ndarray:
        """The rows of these reports' passages, ascending."""

    def report_at(self, rows: np.ndarray) -> np.ndarray:
        """Each row's report, as its position in `reports` (-1: a deleted report's row)."""

    def passage_counts(self) -> np.ndarray:
        """Passages of each report, in the order of `reports`."""

    def lexical_top(self, tokens: list[str], n: int, report_ids: list[str] | None = None) -> np.ndarray:
        """The n rows of best BM25 score over `tokens` (positive scores only), best first, ties by
        row; of these reports only, or of all live reports (None)."""

    def lexical_scores(self, tokens: list[str], rows: np.ndarray) -> np.ndarray:
        """BM25 scores of the given rows (ascending), in their order (0 where nothing matches)."""

    def dense_top(self, vector: np.ndarray, n: int, report_ids: list[str] | None = None) -> np.ndarray:
        """The n rows nearest the vector by inner product, best first; of these reports only
        (exact), or of all live reports (None; through an approximate index on a large one)."""

    def vectors_at(self, rows: np.ndarray) -> np.ndarray:
        """The passages' vectors (float32), one a row."""

    def passages(self, rows: list[int]) -> list[Passage]: ...

    def facts(self, rows) -> list[Fact]:
        """The facts (figures, facts.py) of these rows' passages."""

    def df(self, token: str) -> int:
        """How many passages hold the token."""

    def idf(self, token: str) -> float: ...

    def log(self) -> list[tuple[float, str, str, str]]:
        """The ingest log (time, path, status, detail) that built this generation."""


@runtime_checkable
class IndexWriter(Protocol):
    """One ingest's writes into a backend, from the generation it serves (`base`) to a new one. The
    reading, cleaning, chunking and classifying of files is the same for every backend (ingest.py's
    `ingest`, given a writer); the writer only stores: reports deleted and added, then `publish`,
    which embeds what it does not already hold, writes, checks and makes the new generation the
    served one in one step. Until then servers answer from `base`; an ingest that fails or is killed
    leaves `base` served, and the next `session` clears what it left. Generations no server may
    still be answering from are dropped by `cleanup` (also at the end of `publish`)."""

    backend: str
    base: str | None  # the generation served when the session began (None: none yet, or a rebuild)

    def session(self, wait: bool = True) -> AbstractContextManager:
        """One ingest at a time (where the backend can serve that); leftovers of an interrupted
        ingest cleared; `base` and its reports read."""

    def live(self) -> dict[str, Report]:
        """The base generation's reports by id (their texts need not be loaded)."""

    def passages_of(self, report_id: str) -> int:
        """Passages of a report of the base generation (0 for another)."""

    def log(self) -> list[tuple[float, str, str, str]]:
        """The base generation's ingest log."""

    def delete(self, report_ids: Iterable[str]) -> None:
        """Reports of the base that the new generation does not hold (removed, or replaced by `add`)."""

    def add(self, reports: list[Report], passages: list[Passage]) -> None:
        """Reports (with their texts) and their passages that the new generation holds in addition."""

    def publish(self, log: list[tuple[float, str, str, str]], result, embed_progress=None) -> str:
        """Write the new generation with this ingest log and serve it; its name. `result` (an
        ingest.IngestResult) counts the passages embedded."""

    def cleanup(self, keep: int) -> list[str]:
        """Drop generations beyond the newest `keep` that no server may still answer from; what was dropped."""


def top_rows(scores: np.ndarray, n: int, positive: bool = False) -> np.ndarray:
    """Indices of the n highest scores, best first (ties by index, for determinism)."""
    if positive:
        idx = np.flatnonzero(scores > 0)
        scores_sel = scores[idx]
    else:
        idx = np.arange(scores.size)
        scores_sel = scores
    if idx.size > n:
        part = np.argpartition(-scores_sel, n - 1)[:n]
        idx, scores_sel = idx[part], scores_sel[part]
    order = np.lexsort((idx, -scores_sel))
    return idx[order]


class EmbeddedBackend:
    """The embedded index (index.py: segments of SQLite, bm25s and FAISS files on local disk)."""

    backend = "embedded"

    def __init__(self, index: Index):
        self.index = index
        self.generation = index.generation
        self.reports = index.reports
        self.report_by_id = index.report_by_id
        self.size = index.size

    def rows_of(self, report_ids) -> np.ndarray:
        return self.index.rows_of(report_ids)

    def report_at(self, rows: np.ndarray) -> np.ndarray:
        return self.index.row_report[rows]

    def passage_counts(self) -> np.ndarray:
        return self.index.passage_counts()

    def _restrict(self, report_ids: list[str] | None) -> np.ndarray | None:
        if report_ids is None or len(report_ids) >= len(self.reports):
            return None
        return self.index.rows_of(report_ids)

    def lexical_top(self, tokens: list[str], n: int, report_ids: list[str] | None = None) -> np.ndarray:
        index = self.index
        rows = self._restrict(report_ids)
        if rows is not None:
            return rows[top_rows(lexical_scores(index, tokens, rows), n, positive=True)]
        scores = lexical_scores(index, tokens)
        if index.live_rows is not None:  # deleted rows are never found
            scores = np.where(index.row_report >= 0, scores, -1.0)
        return top_rows(scores, n, positive=True)

    def lexical_scores(self, tokens: list[str], rows: np.ndarray) -> np.ndarray:
        return lexical_scores(self.index, tokens, np.asarray(rows, dtype=np.int64))

    def dense_top(self, vector: np.ndarray, n: int, report_ids: list[str] | None = None) -> np.ndarray:
        rows = self._restrict(report_ids)
        if rows is None:
            return ann_top(self.index, vector, n)
        return rows[top_rows(self.index.vectors_at(rows) @ vector, n)]

    def vectors_at(self, rows: np.ndarray) -> np.ndarray:
        return self.index.vectors_at(rows)

    def passages(self, rows: list[int]) -> list[Passage]:
        return self.index.passages(rows)

    def facts(self, rows) -> list[Fact]:
        return self.index.facts(rows)

    def df(self, token: str) -> int:
        return self.index.df(token)

    def idf(self, token: str) -> float:
        return self.index.idf(token)

    def log(self) -> list[tuple[float, str, str, str]]:
        index = self.index
        return GenerationInfo.read(index.path, index.manifest["embedder"], int(index.manifest["dim"])).log()
