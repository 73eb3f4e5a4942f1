"""The index directory: numbered generations, each complete and immutable, and a CURRENT pointer
switched in one atomic rename. Readers load whatever CURRENT names; a build that dies leaves only a
temporary directory that the next build removes."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .store import (
    WORD_SEP,
    check_manifest,
    read_manifest,
    read_passages,
    read_reports,
    save_vectors,
    write_manifest,
    write_store,
)
from .tokenize import BM25_B, BM25_K1, dictionary_hash, get_tokenizer
from .types import Passage, Report

GENERATIONS = "generations"
CURRENT = "CURRENT"
LOCK = "LOCK"


class IndexBusyError(RuntimeError):
    """Another ingest holds the index lock."""


class NoIndexError(RuntimeError):
    """There is no index at the configured place yet."""


@dataclass(frozen=True)
class FaissSettings:
    exact_max: int = 20_000  # flat (exact) search up to this many passages, HNSW above (bench/ann.py)
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128

    def __post_init__(self) -> None:
        for name in ("exact_max", "hnsw_m", "hnsw_ef_construction", "hnsw_ef_search"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"faiss setting {name} must be a positive integer, got {value!r}")


def index_header(report: Report, section: str) -> str:
    """The contextual header each passage is indexed with (never displayed)."""
    return f"【{report.org}】【{' '.join(report.aliases[:6])}】【{report.year}年】【{section}】"


FAULT_ENV = "GOVQA_FAULT_PAUSE"


def checkpoint(stage: str) -> None:
    """For crash tests: with GOVQA_FAULT_PAUSE=<stage>:<marker file> set, an ingest reaching
    `stage` writes the marker and waits there (to be killed). Stages, in order: parsed, embedded,
    staged, renamed, published."""
    spec = os.environ.get(FAULT_ENV, "")
    want, _, marker = spec.partition(":")
    if spec and want == stage:
        Path(marker).write_text(stage, encoding="utf-8")
        while True:
            time.sleep(3600)


class IndexDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def generations(self) -> Path:
        return self.root / GENERATIONS

    def current(self) -> str | None:
        try:
            name = (self.root / CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def current_path(self) -> Path:
        name = self.current()
        if name is None:
            raise NoIndexError(f"no index in {self.root}: run govqa ingest PATH... first")
        return self.generations / name

    def _names(self) -> list[str]:
        if not self.generations.exists():
            return []
        return sorted(p.name for p in self.generations.iterdir() if p.is_dir() and p.name.startswith("g"))

    def next_name(self) -> str:
        numbers = [int(n[1:]) for n in self._names() if n[1:].isdigit()]
        return f"g{(max(numbers) + 1 if numbers else 1):06d}"

    @contextlib.contextmanager
    def lock(self, wait: bool = True):
        """Serialises ingests: a second one waits, or fails at once with wait=False."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError as exc:
                raise IndexBusyError(f"another ingest is running on {self.root} (try again, or drop --no-wait)") from exc
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def staging(self, name: str) -> Path:
        path = self.generations / f".tmp-{name}"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def publish(self, name: str, staged: Path) -> None:
        """Make a fully written generation current: rename it into place, then switch the pointer
        with an atomic rename. Both renames are fsynced so a crash cannot reorder them."""
        _fsync_tree(staged)
        final = self.generations / name
        os.rename(staged, final)
        _fsync_dir(self.generations)
        checkpoint("renamed")
        tmp = self.root / f".{CURRENT}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.root / CURRENT)
        _fsync_dir(self.root)

    def cleanup(self, keep: int) -> list[str]:
        """Remove leftovers of interrupted builds and all but the newest `keep` generations (the
        current one is always kept). Call with the lock held."""
        removed = []
        if self.generations.exists():
            for p in self.generations.iterdir():
                if p.name.startswith(".tmp-"):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p.name)
        current = self.current()
        if current:  # built and renamed, but the pointer never switched: never served, never will be
            for name in [n for n in self._names() if n > current]:
                shutil.rmtree(self.generations / name, ignore_errors=True)
                removed.append(name)
        names = [n for n in self._names() if n != current]
        for name in names[: max(0, len(names) - max(keep - 1, 0))]:
            shutil.rmtree(self.generations / name, ignore_errors=True)
            removed.append(name)
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for dirpath, _, files in os.walk(path):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(Path(dirpath))


def bm25_matrix(doc_ids: list[np.ndarray], n_vocab: int, k1: float, b: float, chunk: int = 20_000):
    """BM25 scores (bm25s's Lucene variant) of every (token, passage) pair, as the column-sparse
    arrays bm25s searches: data, indices (passages, ascending within a token) and indptr (by token
    id); and each token's document frequency. Vectorised over the passages' token-id arrays, so a
    corpus costs a few bytes a token; the tests hold it to bm25s's own indexing."""
    n_docs = len(doc_ids)
    lengths = np.fromiter((d.size for d in doc_ids), dtype=np.int64, count=n_docs)
    docs, toks, tfs = [], [], []
    for start in range(0, n_docs, chunk):  # distinct (passage, token) pairs with their counts
        part = doc_ids[start : start + chunk]
        doc = np.repeat(np.arange(start, start + len(part), dtype=np.int64), lengths[start : start + len(part)])
        keys, counts = np.unique(doc * n_vocab + np.concatenate(part or [np.zeros(0, np.int32)]), return_counts=True)
        docs.append((keys // n_vocab).astype(np.int32))
        toks.append((keys % n_vocab).astype(np.int32))
        tfs.append(counts.astype(np.float32))
    doc = np.concatenate(docs or [np.zeros(0, np.int32)])
    tok = np.concatenate(toks or [np.zeros(0, np.int32)])
    tf = np.concatenate(tfs or [np.zeros(0, np.float32)])
    df = np.bincount(tok, minlength=n_vocab)
    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    norm = k1 * (1 - b + b * lengths / max(float(lengths.mean()) if n_docs else 1.0, 1e-9))
    scores = (idf[tok] * tf / (norm[doc] + tf)).astype(np.float32)
    order = np.argsort(tok, kind="stable")  # by token; pairs came ordered by passage, and stay so
    indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
    return scores[order], doc[order], indptr, df


def build_generation(path: Path, reports: list[Report], passages: list[Passage], vectors: np.ndarray,
                     vec_keys: list[str], log: list[tuple[float, str, str, str]], embedder_name: str,
                     dim: int, faiss_settings: FaissSettings, known_words: dict[str, list[str]] | None = None) -> None:
    """Write a complete generation into `path` (an empty staging directory). `known_words` maps
    passage ids to their jieba words already computed (unchanged passages of the previous
    generation): segmenting was most of an ingest's time; the character n-grams are cheap to redo."""
    import bm25s
    import faiss

    by_id = {r.id: r for r in reports}
    tokenizer = get_tokenizer()
    known_words = known_words or {}
    vocab: dict[str, int] = {}
    words, doc_ids = [], []
    for p in passages:  # each passage's tokens become ids at once: strings for every token of a
        text = index_header(by_id[p.report_id], p.section) + "\n" + p.text  # large corpus do not fit
        w = known_words.get(p.id) or tokenizer.index_words(text)
        words.append(WORD_SEP.join(w))
        tokens = w + tokenizer.ngrams(text)
        doc_ids.append(np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), dtype=np.int32, count=len(tokens)))
    write_store(path / "store.sqlite", reports, passages, vec_keys, words, log)
    save_vectors(path / "vectors.npy", vectors)
    data, indices, indptr, df = bm25_matrix(doc_ids, len(vocab), BM25_K1, BM25_B)
    (path / "df.json").write_text(json.dumps({"n": len(passages), "df": dict(zip(vocab, df.tolist(), strict=True))},
                                             ensure_ascii=False), encoding="utf-8")
    if passages:
        bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        bm25.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": len(passages)}
        bm25.vocab_dict, bm25.nonoccurrence_array = vocab, None
        bm25.save(str(path / "bm25"), show_progress=False)
    kind = "flat" if len(passages) <= faiss_settings.exact_max else "hnsw"
    if kind == "flat":
        ann = faiss.IndexFlatIP(dim)
    else:
        # vectors held as float16 inside the graph: half the memory of float32, the same neighbours
        # (the fused scores use the float32 vectors of vectors.npy)
        ann = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, faiss_settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        ann.hnsw.efConstruction = faiss_settings.hnsw_ef_construction
    if len(passages):
        ann.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(ann, str(path / "faiss.index"))
    years = Counter(r.year for r in reports)
    write_manifest(
        path / "manifest.json", embedder=embedder_name, dim=dim, dictionary=dictionary_hash(),
        reports=len(reports), passages=len(passages), faiss=kind, hnsw_ef_search=faiss_settings.hnsw_ef_search,
        years={str(k): v for k, v in sorted(years.items())},
    )


class Index:
    """A loaded generation: read-only, safe to share between threads."""

    def __init__(self, path: str | Path, embedder_name: str, dim: int):
        import bm25s
        import faiss

        self.path = Path(path)
        self.generation = self.path.name
        self.manifest = read_manifest(self.path / "manifest.json")
        check_manifest(self.manifest, embedder_name, dim, dictionary_hash())
        self._local = threading.local()
        con = self._con()
        self.reports = read_reports(con)
        self.report_by_id = {r.id: r for r in self.reports}
        position = {r.id: i for i, r in enumerate(self.reports)}
        rows = con.execute("SELECT report_id FROM passages ORDER BY row").fetchall()
        self.row_report = np.fromiter((position[r[0]] for r in rows), dtype=np.int32, count=len(rows))
        self.size = len(rows)
        self._position = position
        # a report's passages are consecutive rows (rows are ordered by report): its rows are a range
        self._ranges = None
        if bool(np.all(np.diff(self.row_report) >= 0)):
            every = np.arange(len(self.reports))
            self._ranges = (np.searchsorted(self.row_report, every, "left"), np.searchsorted(self.row_report, every, "right"))
        self.vectors = np.load(self.path / "vectors.npy", mmap_mode="r")
        # memory-mapped: the posting lists a query reads come into memory, the rest stays on disk
        self.bm25 = bm25s.BM25.load(str(self.path / "bm25"), mmap=True) if self.size else None
        self.ann = faiss.read_index(str(self.path / "faiss.index"))
        if hasattr(self.ann, "hnsw"):
            self.ann.hnsw.efSearch = int(self.manifest.get("hnsw_ef_search", FaissSettings().hnsw_ef_search))
        stats = json.loads((self.path / "df.json").read_text(encoding="utf-8"))
        self.doc_count = max(int(stats["n"]), 1)
        self.df: dict[str, int] = stats["df"]

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(f"file:{self.path / 'store.sqlite'}?mode=ro", uri=True, check_same_thread=False)
            self._local.con = con
        return con

    def passages(self, rows: list[int]) -> list[Passage]:
        return read_passages(self._con(), self.report_by_id, rows)

    def all_passages(self) -> list[Passage]:
        return read_passages(self._con(), self.report_by_id)

    def words_by_passage(self) -> dict[str, list[str]]:
        return {pid: words.split(WORD_SEP) if words else []
                for pid, words in self._con().execute("SELECT id, words FROM passages")}

    def vec_keys(self) -> list[str]:
        return [r[0] for r in self._con().execute("SELECT vec_key FROM passages ORDER BY row")]

    def ingest_log(self) -> list[tuple[float, str, str, str]]:
        return self._con().execute("SELECT time, path, status, detail FROM ingest_log ORDER BY rowid").fetchall()

    def rows_of(self, report_ids) -> np.ndarray:
        """The rows of these reports' passages, ascending."""
        positions = sorted({self._position[r] for r in report_ids if r in self._position})
        if self._ranges is None:
            return np.flatnonzero(np.isin(self.row_report, positions))
        lo, hi = self._ranges
        return np.concatenate([np.arange(lo[p], hi[p]) for p in positions] or [np.zeros(0, np.int64)])

    def idf(self, token: str) -> float:
        df = self.df.get(token, 0)
        return float(np.log(1 + (self.doc_count - df + 0.5) / (df + 0.5)))
