"""The index directory: numbered generations, each complete and immutable, and a CURRENT pointer
switched in one atomic rename. Readers load whatever CURRENT names; a build that dies leaves only a
temporary directory that the next build removes."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .facts import Fact, extract_facts
from .store import (
    WORD_SEP,
    IndexMismatchError,
    check_manifest,
    connect_ro,
    read_facts,
    read_log,
    read_manifest,
    read_passages,
    read_reports,
    read_words,
    save_vectors,
    select_in,
    write_manifest,
    write_store,
)
from .tokenize import BM25_B, BM25_K1, Vocabulary, dictionary_hash
from .types import Passage, Report

try:  # POSIX (Linux, macOS): leases are shared flock locks
    import fcntl
except ImportError:  # pragma: no cover - Windows, where an open file cannot be deleted anyway
    fcntl = None

GENERATIONS = "generations"
CURRENT = "CURRENT"
LOCK = "LOCK"
LEASE = ".lease"  # in each generation directory: readers hold a shared lock on it, cleanup an exclusive one

log = logging.getLogger("govqa.index")


class IndexBusyError(RuntimeError):
    """Another ingest holds the index lock."""


class NoIndexError(RuntimeError):
    """There is no index at the configured place yet."""


class GenerationGoneError(NoIndexError):
    """The generation was removed (by cleanup after later ingests) before it could be leased; load
    the current one again."""


class Lease:
    """A shared lock on a generation directory's lease file, held while a reader uses the directory
    (its segment's files). Cleanup removes only directories it can lock exclusively, so a directory
    any live reader (any process, any thread) holds is never removed; a reader that dies releases
    its leases with its file descriptors. Released by `release()` or when garbage collected."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._fd = _open_lease(directory, create=(directory / "store.sqlite").exists())
        self._finalizer = weakref.finalize(self, os.close, self._fd) if self._fd is not None else None
        if self._fd is not None and fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_SH)  # waits while a cleanup decides on this directory
            try:  # removed while we waited: the file we locked is no longer the one at its path
                gone = os.fstat(self._fd).st_ino != os.stat(directory / LEASE).st_ino
            except FileNotFoundError:
                gone = True
            if gone:
                self.release()
                raise GenerationGoneError(f"{directory} was removed by a later ingest's cleanup; load the current generation")

    def release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


def _open_lease(directory: Path, create: bool) -> int | None:
    """The lease file's descriptor (read-only is enough for flock). A generation written before
    leases existed gets its file on first use; None when it cannot be made (a read-only index)."""
    path = directory / LEASE
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        if not directory.is_dir() or not create:
            raise GenerationGoneError(f"{directory} does not exist (removed by a later ingest's cleanup?)") from None
    try:
        return os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        log.warning("cannot lease %s (%s): a later ingest's cleanup may remove it while it is read", directory, exc)
        return None


def _try_exclusive(directory: Path) -> int | None:
    """An exclusive lock on the directory's lease file (its descriptor), or None when a reader
    holds a lease on it. A directory without a lease file yet gets one."""
    if fcntl is None:  # pragma: no cover - Windows refuses to delete files that are open instead
        return -1
    try:
        fd = os.open(directory / LEASE, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _release(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        os.close(fd)


ANN_KINDS = ("ivf", "hnsw")


@dataclass(frozen=True)
class IndexSettings:
    # a segment of up to exact_max passages is searched exactly (flat); a larger one through an
    # approximate index, IVF or HNSW (bench/ann.py: IVF keeps recall@10 >= 0.99 where HNSW fell
    # below 0.95, and builds faster)
    exact_max: int = 20_000
    ann: str = "ivf"
    ivf_lists: int = 0  # 0: 2 * sqrt(passages) lists
    ivf_probe: int = 64  # lists searched per query
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    # an ingest into a large index writes a delta segment beside the existing ones; deltas are
    # merged into one past max_deltas, and everything is rebuilt once the deltas hold more than
    # delta_share of the passages
    max_deltas: int = 8
    delta_share: float = 0.1

    def __post_init__(self) -> None:
        for name in ("exact_max", "ivf_probe", "hnsw_m", "hnsw_ef_construction", "hnsw_ef_search", "max_deltas"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"index setting {name} must be a positive integer, got {value!r}")
        if not isinstance(self.ivf_lists, int) or self.ivf_lists < 0:
            raise ValueError(f"index setting ivf_lists must be 0 (automatic) or a positive integer, got {self.ivf_lists!r}")
        if self.ann not in ANN_KINDS:
            raise ValueError(f"index setting ann must be one of {', '.join(ANN_KINDS)}, got {self.ann!r}")
        if not (isinstance(self.delta_share, int | float) and 0 <= self.delta_share <= 1):
            raise ValueError(f"index setting delta_share must be between 0 and 1, got {self.delta_share!r}")


def index_header(report: Report, section: str) -> str:
    """The contextual header each passage is indexed with (never displayed)."""
    return f"【{report.org}】【{' '.join(report.aliases[:6])}】【{f'{report.year}年' if report.year else ''}】【{section}】"


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
        """Serialises ingests: a second one waits, or fails at once with wait=False. An OS file
        lock (filelock: flock on Linux and macOS, LockFileEx on Windows), released when the holder
        dies."""
        from filelock import FileLock, Timeout

        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.root / LOCK, timeout=-1 if wait else 0, thread_local=False)
        try:
            lock.acquire()
        except Timeout as exc:
            raise IndexBusyError(f"another ingest is running on {self.root} (try again, or drop --no-wait)") from exc
        try:
            yield
        finally:
            lock.release()

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
        current one is always kept), except those whose segments a kept generation still uses and
        those a live reader holds a lease on (Lease), with the segments they use. Call with the
        lock held."""
        removed = []
        if self.generations.exists():
            for p in self.generations.iterdir():
                if p.name.startswith(".tmp-"):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p.name)
        current = self.current()
        names = [n for n in self._names() if n != current]
        # built and renamed, but the pointer never switched: never served, never will be
        never = [n for n in names if current and n > current]
        names = [n for n in names if n not in never]
        drop = never + names[: max(0, len(names) - max(keep - 1, 0))]
        held: dict[str, int] = {}  # the candidates no reader holds, locked until removed
        try:
            for name in drop:
                fd = _try_exclusive(self.generations / name)
                if fd is not None:
                    held[name] = fd
            used = set()
            for name in [n for n in self._names() if n not in held]:  # kept, or leased by a reader
                used.update(s["name"] for s in _segments_of(self.generations / name))
            for name in drop:
                if name in held and name not in used:
                    shutil.rmtree(self.generations / name, ignore_errors=True)
                    removed.append(name)
        finally:
            for fd in held.values():
                _release(fd)
        return removed


def _segments_of(generation: Path) -> list[dict]:
    try:
        return read_manifest(generation / "manifest.json").get("segments", [])
    except IndexMismatchError:  # unreadable: it protects nothing
        return []


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


@dataclass(frozen=True)
class Background:
    """Corpus statistics of the segments a new segment is searched beside: its BM25 scores use the
    whole corpus's document frequencies and mean length, as one build of everything would."""
    docs: int = 0
    tokens: int = 0
    df: Callable[[list[str]], np.ndarray] | None = None  # tokens -> their document frequencies there


class BM25Builder:
    """BM25 scores (bm25s's Lucene variant) of every (token, passage) pair, as the column-sparse
    arrays bm25s searches: data, indices (passages, ascending within a token) and indptr (by token
    id). Vectorised, so a corpus costs a few bytes a token; the tests hold it to bm25s's own
    indexing. Passages come a window at a time (`add`), which keeps only the window's distinct
    (token, passage) pairs and counts, ordered by token then passage; `build` scores them all and
    puts them in place, with no sort of the whole (a token's entries from earlier windows come
    first, so passages stay ascending)."""

    def __init__(self) -> None:
        self._pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # token, passage, count
        self._lengths: list[np.ndarray] = []
        self.passages = 0

    def add(self, tokens: np.ndarray, passage: np.ndarray, count: int) -> None:
        """A window of `count` passages: token ids, and the passage (0-based in the window) of each."""
        keys, tf = np.unique(tokens.astype(np.int64) * count + passage, return_counts=True)
        self._pairs.append(((keys // count).astype(np.int32), (keys % count + self.passages).astype(np.int32),
                            tf.astype(np.float32)))
        self._lengths.append(np.bincount(passage, minlength=count))
        self.passages += count

    def build(self, n_vocab: int, k1: float, b: float, background_df: np.ndarray | None = None,
              background: Background = Background()):
        """data, indices, indptr; each token's document frequency in these passages; their total
        length. `background_df` (by token id) and `background` add other segments' passages to the
        statistics."""
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        df = np.zeros(n_vocab, dtype=np.int64)
        for tok, _, _ in self._pairs:
            df += np.bincount(tok, minlength=n_vocab)
        all_docs = self.passages + background.docs
        all_df = df + (background_df if background_df is not None else 0)
        idf = np.log(1 + (all_docs - all_df + 0.5) / (all_df + 0.5)).astype(np.float32)
        mean_length = (int(lengths.sum()) + background.tokens) / all_docs if all_docs else 1.0
        norm = (k1 * (1 - b + b * lengths / max(mean_length, 1e-9))).astype(np.float32)
        indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
        data = np.empty(int(indptr[-1]), dtype=np.float32)
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        filled = indptr[:-1].copy()  # where each token's next entry goes
        while self._pairs:
            tok, doc, tf = self._pairs.pop(0)
            counts = np.bincount(tok, minlength=n_vocab)
            first = np.cumsum(counts) - counts  # this window's entries of a token are consecutive from here
            at = filled[tok] + (np.arange(tok.size) - first[tok])
            data[at] = idf[tok] * tf / (norm[doc] + tf)
            indices[at] = doc
            filled += counts
        return data, indices, indptr, df, int(lengths.sum())


ENCODE_WINDOW = 2000  # passages tokenised and counted together


def build_segment(path: Path, reports: list[Report], passages: list[Passage], vectors: np.ndarray,
                  vec_keys: list[str], log: list[tuple[float, str, str, str]], dim: int, settings: IndexSettings,
                  known_words: dict[str, list[str]] | None = None, background: Background = Background()) -> dict:
    """Write one segment (these reports' passages, searchable on its own or beside others) and the
    ingest log into `path` (an empty staging directory); returns its entry for the generation's
    manifest. `known_words` maps passage ids to their jieba words already computed (passages kept
    from earlier segments), which are not segmented again."""
    import bm25s
    import faiss

    by_id = {r.id: r for r in reports}
    known_words = known_words or {}
    vocab, scores, words = Vocabulary(), BM25Builder(), []
    for start in range(0, len(passages), ENCODE_WINDOW):
        window = passages[start : start + ENCODE_WINDOW]
        texts = [index_header(by_id[p.report_id], p.section) + "\n" + p.text for p in window]
        found, tokens, owner = vocab.encode(texts, [known_words.get(p.id) or None for p in window])
        words += [WORD_SEP.join(w) for w in found]
        scores.add(tokens, owner, len(window))
    background_df = background.df(list(vocab.ids)) if background.df and vocab.ids else None
    data, indices, indptr, df, tokens_total = scores.build(len(vocab.ids), BM25_K1, BM25_B,
                                                           background_df=background_df, background=background)
    (path / LEASE).touch()
    write_store(path / "store.sqlite", reports, passages, vec_keys, words, log, vocab=zip(vocab.ids, df.tolist(), strict=True),
                facts=extract_facts(passages))
    entry = {"name": path.name.removeprefix(".tmp-"), "passages": len(passages), "tokens": tokens_total, "deleted": []}
    if not passages:
        return entry
    save_vectors(path / "vectors.npy", vectors)
    bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B)
    bm25.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": len(passages)}
    bm25.vocab_dict, bm25.nonoccurrence_array = vocab.ids, None
    bm25.save(str(path / "bm25"), show_progress=False)
    ann, kind = vector_index(np.ascontiguousarray(vectors, dtype=np.float32), dim, settings)
    faiss.write_index(ann, str(path / "faiss.index"))
    return entry | {"faiss": kind}


def vector_index(vectors: np.ndarray, dim: int, settings: IndexSettings):
    """A FAISS index of these vectors by the settings, and its kind: flat (exact) up to exact_max
    vectors, else IVF or HNSW. Both approximate kinds hold the vectors as float16 (half the memory,
    the same neighbours; the fused scores use the float32 vectors of vectors.npy)."""
    import faiss

    n = len(vectors)
    if n <= settings.exact_max:
        kind, ann = "flat", faiss.IndexFlatIP(dim)
    elif settings.ann == "hnsw":
        kind, ann = "hnsw", faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        ann.hnsw.efConstruction = settings.hnsw_ef_construction
    else:
        # k-means on 39 vectors a list (FAISS' minimum), 10 rounds: a third of the time of FAISS'
        # defaults (256 a list, 25 rounds) at the same recall (bench/ann.py)
        lists = max(1, min(settings.ivf_lists or round(2 * n**0.5), n // 39))
        kind, ann = "ivf", faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, lists, faiss.ScalarQuantizer.QT_fp16,
                                                         faiss.METRIC_INNER_PRODUCT)
        ann.cp.max_points_per_centroid, ann.cp.niter = 39, 10
        ann.train(vectors)
    ann.add(vectors)
    return ann, kind


def configure_search(ann, settings: IndexSettings) -> None:
    """How much of an approximate index a query reads (nothing to set for a flat one)."""
    if hasattr(ann, "hnsw"):
        ann.hnsw.efSearch = settings.hnsw_ef_search
    elif hasattr(ann, "nprobe"):
        ann.nprobe = min(settings.ivf_probe, ann.nlist)


def write_generation(path: Path, segments: list[dict], reports: list[Report], embedder_name: str, dim: int,
                     settings: IndexSettings) -> None:
    """The manifest that makes `path` a generation: its segments in search order, each with the
    reports deleted from it since it was written (ids), and what the whole holds."""
    years = Counter(r.year for r in reports)
    write_manifest(
        path / "manifest.json", embedder=embedder_name, dim=dim, dictionary=dictionary_hash(), segments=segments,
        reports=len(reports), passages=sum(s["passages"] for s in segments), hnsw_ef_search=settings.hnsw_ef_search,
        ivf_probe=settings.ivf_probe,
        years={str(k): v for k, v in sorted(years.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))},
    )


def build_generation(path: Path, reports: list[Report], passages: list[Passage], vectors: np.ndarray,
                     vec_keys: list[str], log: list[tuple[float, str, str, str]], embedder_name: str,
                     dim: int, settings: IndexSettings, known_words: dict[str, list[str]] | None = None) -> None:
    """A generation of one segment holding everything (a first or full build)."""
    entry = build_segment(path, reports, passages, vectors, vec_keys, log, dim, settings, known_words)
    write_generation(path, [entry] if passages else [], reports, embedder_name, dim, settings)


class Segment:
    """One segment, loaded: its reports (deleted ones included), passages, vectors, BM25 and FAISS.
    Read-only and shared between the generations that use it."""

    def __init__(self, path: Path, search: IndexSettings):
        import bm25s
        import faiss

        self.path = path
        self.name = path.name
        self.lease = Lease(path)  # before anything is read: from here on, cleanup leaves the directory
        self._local = threading.local()
        con = self.con()
        self.reports = read_reports(con)
        self.report_by_id = {r.id: r for r in self.reports}
        position = {r.id: i for i, r in enumerate(self.reports)}
        rows = con.execute("SELECT report_id FROM passages ORDER BY row").fetchall()
        self.row_report = np.fromiter((position[r[0]] for r in rows), dtype=np.int32, count=len(rows))
        self.size = len(rows)
        self.vectors = self.bm25 = self.ann = None
        if self.size:
            # memory-mapped: the rows and posting lists a query reads come into memory, the rest
            # stays on disk; held as plain arrays over the maps, since slicing an np.memmap builds a
            # memmap object each time (~5 µs) and a query slices posting lists hundreds of times
            self.vectors = np.asarray(np.load(path / "vectors.npy", mmap_mode="r"))
            self.bm25 = bm25s.BM25.load(str(path / "bm25"), mmap=True)
            self.bm25.scores = {k: np.asarray(v) if isinstance(v, np.memmap) else v for k, v in self.bm25.scores.items()}
            self.ann = faiss.read_index(str(path / "faiss.index"))
            configure_search(self.ann, search)

    def con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = connect_ro(self.path / "store.sqlite")
        return con

    def df(self, token: str) -> int:
        at = self.bm25.vocab_dict.get(token) if self.bm25 is not None else None
        return 0 if at is None else int(self.bm25.scores["indptr"][at + 1] - self.bm25.scores["indptr"][at])


class Index:
    """A loaded generation: its segments' rows one after the other (row numbers are global), less
    the reports deleted from them. Read-only, safe to share between threads. `reuse`: a loaded
    generation whose segments this one may share instead of loading them again."""

    def __init__(self, path: str | Path, embedder_name: str, dim: int, reuse: Index | None = None):
        self.path = Path(path)
        self.generation = self.path.name
        # leased before anything is read, as is each segment (Segment): a later ingest's cleanup
        # never removes a generation, or a segment, that a loaded Index still answers from
        self.lease = Lease(self.path)
        self.manifest = read_manifest(self.path / "manifest.json")
        check_manifest(self.manifest, embedder_name, dim, dictionary_hash())
        default = IndexSettings()  # how much of an approximate index a query reads, as the build said
        search = IndexSettings(hnsw_ef_search=int(self.manifest.get("hnsw_ef_search", default.hnsw_ef_search)),
                               ivf_probe=int(self.manifest.get("ivf_probe", default.ivf_probe)))
        loaded = {s.name: s for s in reuse.segments} if reuse is not None else {}
        entries = self.manifest["segments"]
        self.segments = [loaded.get(e["name"]) or Segment(self.path.parent / e["name"], search) for e in entries]
        dead = [set(e["deleted"]) for e in entries]
        self.reports = sorted((r for seg, d in zip(self.segments, dead, strict=True) for r in seg.reports if r.id not in d),
                              key=lambda r: (r.source, r.id))
        self.report_by_id = {r.id: r for r in self.reports}
        if len(self.report_by_id) != len(self.reports):
            raise IndexMismatchError(f"{self.path}: a report is live in two segments; rebuild the index")
        position = {r.id: i for i, r in enumerate(self.reports)}
        self._position = position
        parts = []
        for seg, d in zip(self.segments, dead, strict=True):  # segment-local report numbers -> positions here (-1: deleted)
            to_global = np.array([-1 if r.id in d else position[r.id] for r in seg.reports] or [0], dtype=np.int32)
            parts.append(to_global[seg.row_report])
        self.row_report = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        self.size = int(self.row_report.size)
        self.offsets = np.cumsum([0] + [s.size for s in self.segments])
        # each report's passages are consecutive rows: its rows are a range
        starts = np.flatnonzero(np.diff(self.row_report, prepend=-2) != 0)
        runs = self.row_report[starts]
        ends = np.append(starts[1:], self.size)
        self._lo = np.zeros(len(self.reports), np.int64)
        self._hi = np.zeros(len(self.reports), np.int64)
        keep = runs >= 0
        if len(set(runs[keep].tolist())) != int(keep.sum()):
            raise IndexMismatchError(f"{self.path}: a report's passages are not consecutive rows; rebuild the index")
        self._lo[runs[keep]], self._hi[runs[keep]] = starts[keep], ends[keep]
        # rows of deleted reports: never searched (None when there are none)
        self.live_rows = np.flatnonzero(self.row_report >= 0) if (self.row_report < 0).any() else None
        # BM25 statistics count deleted rows until the next full build, as the segments' scores do
        self.doc_count = max(self.size, 1)

    def release(self) -> None:
        """Give up the leases now (they also go when the Index is garbage collected); only for an
        Index whose segments no other Index shares (`reuse`)."""
        self.lease.release()
        for seg in self.segments:
            seg.lease.release()

    def _split(self, rows: np.ndarray):
        """(segment, segment-local rows, positions in `rows`) for each segment some of the rows are in."""
        rows = np.asarray(rows, dtype=np.int64)
        which = np.searchsorted(self.offsets, rows, side="right") - 1
        for s in np.unique(which):
            at = np.flatnonzero(which == s)
            yield self.segments[s], rows[at] - self.offsets[s], at

    def vectors_at(self, rows: np.ndarray) -> np.ndarray:
        dim = int(self.manifest["dim"])
        out = np.zeros((len(rows), dim), dtype=np.float32)
        for seg, local, at in self._split(rows):
            out[at] = seg.vectors[local]
        return out

    def passages(self, rows: list[int]) -> list[Passage]:
        out: list[Passage | None] = [None] * len(rows)
        for seg, local, at in self._split(np.asarray(rows, dtype=np.int64)):
            for i, p in zip(at, read_passages(seg.con(), seg.report_by_id, local.tolist()), strict=True):
                out[i] = p
        return out

    def facts(self, rows) -> list[Fact]:
        """The facts (figures, facts.py) of these rows' passages, with the rows numbered as here."""
        out = []
        for seg, local, _ in self._split(np.unique(np.asarray(rows, dtype=np.int64))):
            out += read_facts(seg.con(), local.tolist(), offset=int(self.offsets[self.segments.index(seg)]))
        return out

    def all_passages(self) -> list[Passage]:
        return self.passages(self.live_rows if self.live_rows is not None else np.arange(self.size))

    def live_words(self) -> dict[str, list[str]]:
        """Passage id -> jieba words, of the passages not deleted."""
        out = {}
        for seg, e in zip(self.segments, self.manifest["segments"], strict=True):
            out.update(read_words(seg.con(), set(e["deleted"])))
        return out

    def rows_of(self, report_ids) -> np.ndarray:
        """The rows of these reports' passages, ascending."""
        positions = np.unique(np.fromiter((self._position[r] for r in report_ids if r in self._position), dtype=np.int64))
        lo = np.sort(self._lo[positions])
        n = self._hi[positions][np.argsort(self._lo[positions])] - lo
        # each range's rows: its start, repeated, plus the position within the range
        return np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(int(n.sum()), dtype=np.int64)

    def passage_counts(self) -> np.ndarray:
        """Passages of each report, in the order of `reports`."""
        return self._hi - self._lo

    def df(self, token: str) -> int:
        """How many passages hold the token."""
        return sum(seg.df(token) for seg in self.segments)

    def idf(self, token: str) -> float:
        df = self.df(token)
        return float(np.log(1 + (self.doc_count - df + 0.5) / (df + 0.5)))


def find_vectors(segments: list[Path], keys: list[str]) -> dict[str, np.ndarray]:
    """The vectors stored under these content keys in any of these segments."""
    out: dict[str, np.ndarray] = {}
    for path in segments:
        wanted = [k for k in dict.fromkeys(keys) if k not in out]
        if not wanted or not (path / "vectors.npy").exists():
            continue
        vectors = np.load(path / "vectors.npy", mmap_mode="r")
        with contextlib.closing(connect_ro(path / "store.sqlite")) as con:
            for row, key in select_in(con, "SELECT row, vec_key FROM passages WHERE vec_key IN", wanted):
                out.setdefault(key, np.array(vectors[row]))
    return out


@dataclass
class GenerationInfo:
    """What an ingest needs to know of the current generation, read without loading it: its
    manifest, and each live report (without its text) with the segment it is in and its passage count."""
    path: Path
    manifest: dict
    reports: dict[str, Report]
    home: dict[str, str]
    passages: dict[str, int]

    @classmethod
    def read(cls, path: Path, embedder_name: str, dim: int) -> GenerationInfo:
        manifest = read_manifest(path / "manifest.json")
        check_manifest(manifest, embedder_name, dim, dictionary_hash())
        reports, home, counts = {}, {}, {}
        for entry in manifest["segments"]:
            dead = set(entry["deleted"])
            with contextlib.closing(connect_ro(path.parent / entry["name"] / "store.sqlite")) as con:
                for r in read_reports(con, text=False):
                    if r.id not in dead:
                        reports[r.id], home[r.id] = r, entry["name"]
                counts.update((rid, n) for rid, n in con.execute("SELECT id, passages FROM reports") if rid not in dead)
        return cls(path, manifest, reports, home, counts)

    def segment_paths(self) -> list[Path]:
        return [self.path.parent / e["name"] for e in self.manifest["segments"]]

    def log(self) -> list[tuple[float, str, str, str]]:
        with contextlib.closing(connect_ro(self.path / "store.sqlite")) as con:
            return read_log(con)
