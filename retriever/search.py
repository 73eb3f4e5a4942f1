"""Hybrid search: BM25 over words and bigrams, dense vectors, fused by a convex combination of
min-max normalised scores with a weight chosen by measurement; filters on year and unit, parsed
from the question (aliases included) or given explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from embeddings import Embedder

from .catalog import Catalog
from .index import Index
from .tokenize import get_tokenizer
from .types import Filters, Hit, Report

if TYPE_CHECKING:
    from .backend import SearchBackend


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    filters: Filters
    reports: list[Report] = field(default_factory=list)  # the reports that were searched


def bm25_rows(bm25, token_ids: list[int], rows: np.ndarray) -> np.ndarray:
    """BM25 scores of the given rows only (ascending), equal to get_scores_from_ids(token_ids)[rows]
    (tested). The rows come in runs of consecutive rows (a report's rows are a range), and each
    query token's posting list is sorted by row: one binary search a run end and token finds the
    run's entries, and all tokens' entries are then summed in one pass. The cost grows with the runs
    and the entries they hold, not with the posting lists' length (at 1M passages a common bigram's
    list holds most of the rows) nor with the rows one by one."""
    data, indices, indptr = bm25.scores["data"], bm25.scores["indices"], bm25.scores["indptr"]
    if rows.size == 0 or not token_ids:
        return np.zeros(rows.size, dtype=np.float32)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    run_at = np.concatenate([[0], breaks])  # where each run starts in `rows`
    # run starts, then run ends (exclusive), in the posting lists' own type: searchsorted casts
    # the list to the needles' wider type otherwise, a copy of the whole list on every call
    bounds = np.concatenate([rows[run_at], np.append(rows[breaks - 1], rows[-1]) + 1]).astype(indices.dtype)
    runs = run_at.size
    first, count = [], []
    for token in token_ids:
        start, end = int(indptr[token]), int(indptr[token + 1])
        at = np.searchsorted(indices[start:end], bounds)
        first.append(at[:runs] + start)
        count.append(at[runs:] - at[:runs])
    first_at, n = np.concatenate(first), np.concatenate(count)
    total = int(n.sum())
    if not total:
        return np.zeros(rows.size, dtype=np.float32)
    at = np.repeat(first_at - (np.cumsum(n) - n), n) + np.arange(total)  # every run's entries, every token
    shift = np.tile(run_at - rows[run_at], len(token_ids))  # a run's row -> its place in `rows`
    where = np.repeat(shift, n) + indices[at]
    return np.bincount(where, weights=data[at], minlength=rows.size).astype(np.float32)


def lexical_scores(index: Index, tokens: list[str], rows: np.ndarray | None = None) -> np.ndarray:
    """BM25 scores of every row, or of the given rows (ascending) in their order. Each segment
    scores its own rows; their statistics are the whole index's (see Background)."""
    out = np.zeros(index.size if rows is None else rows.size, dtype=np.float32)
    for s, seg in enumerate(index.segments):
        if seg.bm25 is None:
            continue
        ids = seg.bm25.get_tokens_ids(tokens)
        lo, hi = int(index.offsets[s]), int(index.offsets[s + 1])
        if not ids:
            continue
        if rows is None:
            out[lo:hi] = seg.bm25.get_scores_from_ids(ids)
            continue
        first, last = np.searchsorted(rows, [lo, hi])
        local = rows[first:last] - lo
        if local.size * 16 <= seg.size:
            out[first:last] = bm25_rows(seg.bm25, ids, local)  # a few reports: score only their rows
        elif local.size:
            out[first:last] = seg.bm25.get_scores_from_ids(ids)[local]
    return out


def ann_top(index: Index, query_vec: np.ndarray, n: int) -> np.ndarray:
    """The n rows nearest the query by each segment's FAISS index, best first, deleted rows left out."""
    rows, scores = [], []
    for s, seg in enumerate(index.segments):
        if seg.ann is not None:
            found_scores, found = seg.ann.search(query_vec[None, :], min(n, seg.size))
            ok = found[0] >= 0
            rows.append(found[0][ok].astype(np.int64) + int(index.offsets[s]))
            scores.append(found_scores[0][ok])
    if not rows:
        return np.zeros(0, dtype=np.int64)
    rows, scores = np.concatenate(rows), np.concatenate(scores)
    if index.live_rows is not None:
        keep = index.row_report[rows] >= 0
        rows, scores = rows[keep], scores[keep]
    return rows[np.argsort(-scores, kind="stable")[:n]]


def _minmax(x: np.ndarray, over: np.ndarray) -> np.ndarray:
    """Scale x so that its values at `over` span [0, 1] (other values may fall outside)."""
    ref = x[over]
    lo, hi = float(ref.min()), float(ref.max())
    if hi - lo < 1e-9:
        return np.where(x > 0, 1.0, 0.0).astype(np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32)


class HybridSearcher:
    """`index`: a search backend (backend.py), or an embedded Index (served through EmbeddedBackend)."""

    def __init__(self, index: SearchBackend | Index, embedder: Embedder, alpha: float = 0.4, candidates: int = 100,
                 context: float = 0.3):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"search alpha (the dense share of the fused score) must be in [0, 1], got {alpha!r}")
        if candidates < 1:
            raise ValueError(f"search candidates must be >= 1, got {candidates!r}")
        if not 0.0 <= context <= 1.0:
            raise ValueError(f"search context (the weight of a passage's best neighbour) must be in [0, 1], got {context!r}")
        if isinstance(index, Index):
            from .backend import EmbeddedBackend

            index = EmbeddedBackend(index)
        self.index = index
        self.context = float(context)
        self.embedder = embedder
        self.alpha = float(alpha)
        self.candidates = int(candidates)
        self.tokenizer = get_tokenizer()
        self.catalog = Catalog(index.reports)

    def search(self, query: str, k: int = 5, filters: Filters | None = None, mode: str = "hybrid") -> SearchResult:
        if mode not in ("hybrid", "lexical", "dense"):
            raise ValueError(f"search mode must be hybrid, lexical or dense, got {mode!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k!r}")
        filters = filters if filters is not None else self.catalog.resolve(query)
        reports = self.catalog.reports_of(filters)
        index = self.index
        if index.size == 0 or not reports:
            return SearchResult(query, [], filters, reports)
        searched = [r.id for r in reports] if len(reports) < len(index.reports) else None
        pool = max(self.candidates, k)

        tokens = self.tokenizer.tokens(query) if mode != "dense" else []
        lex_top = index.lexical_top(tokens, pool, searched) if tokens else np.zeros(0, dtype=np.int64)
        dense_top = np.zeros(0, dtype=np.int64)
        query_vec = None
        if mode != "lexical":
            query_vec = self.embedder.embed_query(query).astype(np.float32)
            dense_top = index.dense_top(query_vec, pool, searched)

        cand = np.unique(np.concatenate([lex_top, dense_top])).astype(np.int64)
        if cand.size == 0:
            return SearchResult(query, [], filters, reports)
        # neighbours (the passages just before and after, in the same report) lend part of their
        # score: a passage whose context matches the question is more likely the answer
        near = np.unique(np.concatenate([cand - 1, cand, cand + 1]).clip(0, index.size - 1))
        near_report = index.report_at(near)
        lex_scores = index.lexical_scores(tokens, near) if tokens else np.zeros(near.size, dtype=np.float32)
        # neighbours outside the searched reports (or deleted) lend nothing: they score 0
        if searched is not None:
            wanted = set(searched)
            inside = np.isin(near_report, [i for i, r in enumerate(index.reports) if r.id in wanted])
        else:
            inside = near_report >= 0
        lex_scores = np.where(inside, lex_scores, 0.0).astype(np.float32)
        if query_vec is not None:
            dense_scores = index.vectors_at(near) @ query_vec
        else:
            dense_scores = np.zeros(near.size, dtype=np.float32)
        alpha = {"hybrid": self.alpha, "lexical": 0.0, "dense": 1.0}[mode]
        in_cand = np.isin(near, cand)
        own = (1 - alpha) * _minmax(lex_scores, in_cand) + alpha * _minmax(dense_scores, in_cand)
        at = np.searchsorted(near, cand)
        fused = own[at]
        if mode == "hybrid" and self.context > 0:
            ctx = np.zeros(cand.size, dtype=np.float32)
            cand_report = near_report[at]
            for step in (-1, 1):
                nb = cand + step
                ok = (nb >= 0) & (nb < index.size)
                nb_at = np.searchsorted(near, nb[ok])
                ok[ok] &= near_report[nb_at] == cand_report[ok]
                ctx[ok] = np.maximum(ctx[ok], own[np.searchsorted(near, nb[ok])])
            fused = fused + self.context * ctx
        order = np.lexsort((cand, -fused))[:k]
        lex_rank = {int(r): i + 1 for i, r in enumerate(lex_top)}
        dense_rank = {int(r): i + 1 for i, r in enumerate(dense_top)}
        rows_out = [int(cand[i]) for i in order]
        passages = index.passages(rows_out)
        hits = []
        for i, passage in zip(order, passages, strict=True):
            row = int(cand[i])
            ranks = {name: rank[row] for name, rank in (("lexical", lex_rank), ("dense", dense_rank)) if row in rank}
            hits.append(Hit(passage=passage, score=round(float(fused[i]), 6), ranks=ranks))
        return SearchResult(query, hits, filters, reports)
