"""Files in, a new index generation out. Incremental: unchanged reports are kept with their stored
vectors, changed ones re-indexed (by content hash), new ones added, gone ones pruned on request.
A file that cannot be read is reported with its reason and never stops the others."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import sys
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from embeddings import Embedder

from .backend import IndexWriter
from .chunking import chunk_report
from .clean import clean_text
from .fetch import FetchError, FetchLimits, fetch_report, is_url
from .index import (
    Background,
    GenerationInfo,
    Index,
    IndexDir,
    IndexSettings,
    build_generation,
    build_segment,
    checkpoint,
    find_vectors,
    write_generation,
)
from .metadata import extract_metadata
from .ocr import OcrLimits
from .readers import SUPPORTED_SUFFIXES, ReportReadError, read_report
from .store import connect_ro, read_df, read_passages, read_reports, read_words
from .types import Passage, Report

MANIFEST_NAMES = ("reports.toml",)
DOWNLOADS = "downloads"  # inside the index directory: the files of reports fetched by URL, one a URL
_OVERRIDABLE = ("title", "org", "aliases", "region", "year", "published")  # metadata a manifest overrides
_MANIFEST_FIELDS = (*_OVERRIDABLE, "url")


@dataclass
class FileResult:
    path: str
    status: str  # added, updated, unchanged, duplicate, removed, failed
    report_id: str = ""
    org: str = ""
    year: int | None = None
    passages: int = 0
    error: str = ""
    review: tuple[str, ...] = ()  # the report's metadata needs a person's check, and why (Report.review)
    warnings: tuple[str, ...] = ()  # e.g. another indexed report of the same unit and year


@dataclass
class IngestResult:
    files: list[FileResult] = field(default_factory=list)
    generation: str | None = None
    reports: int = 0
    passages: int = 0
    embedded: int = 0  # passages embedded in this run (the others reused their stored vectors)
    seconds: float = 0.0

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]


def storable_path(path: str | bytes | Path) -> str:
    """A path as text that can be stored and shown: bytes of a name that are not valid UTF-8 (which
    Python holds as lone surrogates) written as \\xNN."""
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_utf8_name(path: str | Path) -> bool:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(c: str) -> str:
    if c.isprintable() or c in " \u3000":
        return c
    o = ord(c)
    return _NAMED.get(c) or (f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")


def printable(text: str) -> str:
    """Text for a terminal: control and other invisible characters (a file name may hold escape
    sequences, line breaks or a right-to-left override) escaped, and bytes that are not UTF-8
    escaped as storable_path does."""
    text = storable_path(text)
    return text if text.isprintable() else "".join(map(_escape, text))


def collect_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileResult]]:
    """Report files under the given files and folders, and failures for paths that are not."""
    files, problems = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                problems.append(FileResult(storable_path(path), "failed", error=(
                    f"no report files found in this folder (looked for {', '.join(SUPPORTED_SUFFIXES)})")))
            files += found
        elif path.is_file():
            files.append(path)
        else:
            problems.append(FileResult(storable_path(path), "failed", error="no such file or folder"))
    seen, unique = set(), []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems


def load_manifest(path: Path) -> dict[str, dict]:
    """reports.toml: a table per file name, with any of title, org, aliases, region, year, published, url."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"manifest {path}: {exc}") from exc
    out = {}
    for name, fields in data.items():
        if not isinstance(fields, dict):
            raise ValueError(f"manifest {path}: [{name}] must be a table of fields")
        unknown = set(fields) - set(_MANIFEST_FIELDS)
        if unknown:
            raise ValueError(f"manifest {path}: [{name}] has unknown fields {sorted(unknown)}; allowed: {', '.join(_MANIFEST_FIELDS)}")
        if "year" in fields and not (isinstance(fields["year"], int) and 1949 <= fields["year"] <= 2100):
            raise ValueError(f"manifest {path}: [{name}] year must be a year such as 2023, got {fields['year']!r}")
        if "url" in fields and not is_url(fields["url"]):
            raise ValueError(f"manifest {path}: [{name}] url must be an http(s) address such as "
                             f"https://www.example.gov.cn/report.html, got {fields['url']!r}")
        out[name] = fields
    return out


def _manifest_for(file: Path, cache: dict[Path, dict[str, dict]], extra: dict[str, dict]) -> dict:
    folder = file.parent
    if folder not in cache:
        merged: dict[str, dict] = {}
        for name in MANIFEST_NAMES:
            if (folder / name).is_file():
                merged.update(load_manifest(folder / name))
        cache[folder] = merged
    return {**cache[folder].get(file.name, {}), **extra.get(file.name, {})}


def parse_report(path: Path, overrides: dict | None = None, max_expanded: int | None = None,
                 ocr: OcrLimits | None = None) -> Report:
    """Read, clean and describe one report file; ReportReadError says why it cannot be used (no
    text). A report whose unit or year the text does not give is still described, with what is
    known, and its `review` says what a person should check; a manifest field clears that (but
    not a reason to check the text itself, such as a scan read with low OCR confidence)."""
    read = read_report(path, max_expanded, ocr)
    clean = clean_text(read.text)
    if len(clean.text) < 20:
        raise ReportReadError("the file has almost no text")
    meta = extract_metadata(clean)
    fields = {k: getattr(meta, k) for k in _OVERRIDABLE}
    given = {k for k in (overrides or {}) if k in _OVERRIDABLE}
    for key in given:
        value = overrides[key]
        fields[key] = tuple(value) if key == "aliases" else value
    hint = {"org": f' (org = "…" in reports.toml beside the file, ["{path.name}"])',
            "year": f' (year = 2023 in reports.toml beside the file, ["{path.name}"])'}
    review = tuple(reason + (hint.get(field, "") if not fields.get(field) else "")
                   for field, reason in meta.review if field not in given) + read.review
    spans = tuple(s for s in meta.spans if s[0] not in given)
    report_id = hashlib.sha256(clean.text.encode("utf-8")).hexdigest()[:16]
    source = (overrides or {}).get("source") or path.name
    return Report(id=report_id, source=source, path=str(path.resolve()), text=clean.text, review=review, spans=spans,
                  url=(overrides or {}).get("url", ""), pages=clean.pages,
                  **fields)


def _vec_key(embedder_name: str, text: str) -> str:
    return hashlib.sha1(f"{embedder_name}\n{text}".encode()).hexdigest()


def embed_text(passage: Passage) -> str:
    """What the dense retriever sees of a passage."""
    return passage.text


def ingest(
    index_dir: str | Path,
    paths: Iterable[str | Path],
    embedder: Embedder,
    *,
    prune: bool = False,
    rebuild: bool = False,
    wait: bool = True,
    keep_generations: int = 3,
    settings: IndexSettings | None = None,
    manifest: dict[str, dict] | None = None,
    remove: Iterable[str] = (),
    progress: Callable[[str], None] | None = None,
    embed_progress: Callable[[int, int], None] | None = None,
    max_expanded: int | None = None,
    ocr: OcrLimits | None = None,
    fetch: FetchLimits | None = None,
    writer: IndexWriter | None = None,
) -> IngestResult:
    """Index the report files under `paths` into a new generation of `index_dir`. `manifest` adds
    per-file-name fields (as reports.toml does, plus `source`, the name to show); `remove` drops
    reports by id (an unknown id is a KeyError, raised before anything is written). `progress` is
    called with each file's path as it is read; `embed_progress` with (texts embedded, texts to
    embed) as the embedding goes; without it, a progress bar on stderr shows the embedding of a
    large ingest when stderr is a terminal.

    The new generation adds one delta segment (the new and changed reports) beside the current
    generation's segments, and marks the replaced and removed reports deleted in theirs, so its
    cost grows with what changed, not with the index; past settings.max_deltas the deltas are
    merged into one, and once they hold more than settings.delta_share of the passages (or with
    `rebuild`) everything is built again as one segment.

    A path that is an http(s) URL is fetched (fetch.py, within `fetch`'s limits) into the index's
    DOWNLOADS folder and indexed with the URL as its source and url; `ocr` limits the OCR of scanned
    pages and images.

    `writer` takes the changes instead of the index directory (another backend's IndexWriter,
    backend.py): the files are read, classified, chunked and embedded by the same code; the index
    directory then only holds the files fetched by URL."""
    started = time.perf_counter()
    settings = settings or IndexSettings()
    writer = writer or EmbeddedWriter(index_dir, embedder, settings, keep_generations, rebuild)
    result = IngestResult()
    with writer.session(wait=wait):
        reports: dict[str, Report] = writer.live()  # texts of old ones not read
        remove = list(dict.fromkeys(remove))
        unknown = [rid for rid in remove if rid not in reports]
        if unknown:
            raise KeyError(f"no indexed report has the id {', '.join(unknown)}")
        for rid in remove:
            gone = reports.pop(rid)
            result.files.append(FileResult(gone.path or gone.source, "removed", gone.id, gone.org, gone.year))
        by_path = {r.path: r for r in reports.values()}
        paths = list(paths)
        urls = [p for p in paths if is_url(p)]
        files, problems = collect_files([p for p in paths if not is_url(p)])
        result.files += problems
        manifest = dict(manifest or {})
        shown: dict[Path, str] = {}  # a downloaded file -> the URL it is listed by
        for url in dict.fromkeys(u.strip() for u in urls):
            if progress:
                progress(url)
            try:
                path, found_at = fetch_report(url, Path(index_dir) / DOWNLOADS, fetch)
            except FetchError as exc:
                result.files.append(FileResult(url, "failed", error=str(exc)))
                continue
            manifest[path.name] = {**manifest.get(path.name, {}), "source": url, "url": found_at}
            shown[path] = url
            files.append(path)
        manifests: dict[Path, dict[str, dict]] = {}
        new_reports: list[Report] = []
        for file in files:
            if progress and file not in shown:
                progress(storable_path(file))
            if not is_utf8_name(file):  # it could be neither stored nor shown: its own failure, not the ingest's
                result.files.append(FileResult(storable_path(file), "failed", error=(
                    "the file name is not valid UTF-8 (its bytes are shown as \\xNN); rename the file to index it")))
                continue
            name = shown.get(file, str(file))
            try:
                report = parse_report(file, _manifest_for(file, manifests, manifest), max_expanded, ocr)
            except (ReportReadError, ValueError) as exc:
                result.files.append(FileResult(name, "failed", error=str(exc)))
                continue
            except Exception as exc:  # a parser library choking on a corrupt file must not stop the others
                result.files.append(FileResult(name, "failed", error=f"{exc.__class__.__name__}: {exc}"))
                continue
            previous = by_path.get(report.path)
            if report.id in reports and reports[report.id].path == report.path:
                if replace(reports[report.id], text="") != replace(report, text=""):  # same text, new metadata
                    new_reports.append(report)
                    reports[report.id] = report
                    result.files.append(FileResult(name, "updated", report.id, report.org, report.year,
                                                   review=report.review))
                else:
                    result.files.append(FileResult(name, "unchanged", report.id, report.org, report.year,
                                                   review=report.review))
                continue
            if report.id in reports:
                same = reports[report.id]
                result.files.append(FileResult(name, "duplicate", report.id, report.org, report.year,
                                               error=f"same text as {same.source}; indexed once"))
                continue
            status = "added"
            if previous is not None:
                reports.pop(previous.id, None)
                status = "updated"
            reports[report.id] = report
            by_path[report.path] = report
            new_reports.append(report)
            result.files.append(FileResult(name, status, report.id, report.org, report.year, review=report.review))
        _warn_same_unit_and_year(result.files, reports)
        if prune:
            for report in list(reports.values()):
                if report.path and not Path(report.path).exists():
                    del reports[report.id]
                    result.files.append(FileResult(report.path, "removed", report.id, report.org, report.year))

        checkpoint("parsed")
        changed = {r.id for r in new_reports}
        fresh = [p for r in new_reports for p in chunk_report(r)]
        touched = [f for f in result.files if f.status != "unchanged"]
        # only a change to what is indexed writes a generation: files that are unchanged, duplicates
        # or failed leave the index (and its log) as it was
        if rebuild or new_reports or any(f.status == "removed" for f in result.files):
            writer.delete([rid for rid in writer.live() if rid not in reports or rid in changed])
            writer.add(new_reports, fresh)
            log = writer.log() + [(time.time(), f.path, f.status, f.error) for f in touched]
            result.generation = writer.publish(log, result, embed_progress)
        else:
            result.generation = writer.base
        result.reports = len(reports)
        result.passages = sum(writer.passages_of(rid) for rid in reports if rid not in changed) + len(fresh)
        counts: dict[str, int] = {}
        for p in fresh:
            counts[p.report_id] = counts.get(p.report_id, 0) + 1
        for fr in result.files:
            if fr.status != "removed":
                fr.passages = counts.get(fr.report_id) or writer.passages_of(fr.report_id)
    result.seconds = time.perf_counter() - started
    return result


def _warn_same_unit_and_year(files: list[FileResult], reports: dict[str, Report]) -> None:
    """Warn of each added or updated report that another indexed report has its unit and year:
    answers will show both reports' figures, flagged when they differ."""
    by_unit: dict[tuple[str, int], list[Report]] = {}
    for r in reports.values():
        if r.year is not None:
            by_unit.setdefault((r.org, r.year), []).append(r)
    for f in files:
        if f.status in ("added", "updated") and f.year is not None:
            others = [r.source for r in by_unit.get((f.org, f.year), []) if r.id != f.report_id]
            f.warnings = tuple(f"another report of {f.org} {f.year} is indexed: {source} (answers show both; figures "
                               "that differ are flagged 两份报告数字不一致)" for source in others)


class EmbeddedWriter:
    """The embedded index's IndexWriter (backend.py): under the index directory's lock, the reports
    deleted and added are gathered, and `publish` writes them as a new generation (a delta segment
    beside the current ones, or everything again as one segment; see `ingest`) and switches CURRENT."""

    backend = "embedded"

    def __init__(self, index_dir: str | Path, embedder: Embedder, settings: IndexSettings, keep_generations: int = 3,
                 rebuild: bool = False):
        self.root, self.embedder, self.settings = IndexDir(index_dir), embedder, settings
        self.keep, self.rebuild = keep_generations, rebuild
        self.base: str | None = None
        self.current: GenerationInfo | None = None
        self._gone: set[str] = set()
        self._added: dict[str, Report] = {}
        self._fresh: list[Passage] = []

    @contextlib.contextmanager
    def session(self, wait: bool = True):
        """The lock (another ingest waits, or fails at once with wait=False), leftovers of a build
        that was killed removed, and the current generation read."""
        with self.root.lock(wait=wait):
            self.root.cleanup(self.keep)
            self.base = self.root.current()
            self.current = GenerationInfo.read(self.root.current_path(), self.embedder.name, self.embedder.dim) \
                if self.base and not self.rebuild else None
            yield self

    def live(self) -> dict[str, Report]:
        return dict(self.current.reports) if self.current else {}

    def passages_of(self, report_id: str) -> int:
        return self.current.passages.get(report_id, 0) if self.current else 0

    def log(self) -> list[tuple[float, str, str, str]]:
        return self.current.log() if self.current else []

    def delete(self, report_ids: Iterable[str]) -> None:
        self._gone.update(report_ids)

    def add(self, reports: list[Report], passages: list[Passage]) -> None:
        self._added.update((r.id, r) for r in reports)
        self._fresh += passages

    def publish(self, log: list[tuple[float, str, str, str]], result: IngestResult,
                embed_progress: Callable[[int, int], None] | None = None) -> str:
        current, settings = self.current, self.settings
        reports = {rid: r for rid, r in self.live().items() if rid not in self._gone} | self._added
        changed = set(self._added)
        name = self.root.next_name()
        staged = self.root.staging(name)
        plan = _plan(current, reports, changed, len(self._fresh), settings)
        if plan is None:
            _build_all(staged, current, reports, changed, self._fresh, log, self.embedder, settings, result, embed_progress)
        else:
            _build_delta(staged, current, reports, changed, self._fresh, log, self.embedder, settings, result, merge=plan,
                         embed_progress=embed_progress)
        checkpoint("staged")
        self.root.publish(name, staged)
        checkpoint("published")
        self.cleanup(self.keep)
        return name

    def cleanup(self, keep: int) -> list[str]:
        return self.root.cleanup(keep)


def _plan(current: GenerationInfo | None, reports: dict[str, Report], changed: set[str], fresh: int,
          settings: IndexSettings) -> bool | None:
    """None: build everything as one segment; False: add a delta segment; True: add one delta
    segment that also takes in the current deltas (merged)."""
    if current is None or not current.manifest["segments"]:
        return None
    base = current.manifest["segments"][0]["name"]
    kept = {rid: n for rid, n in current.passages.items() if rid in reports and rid not in changed}
    in_deltas = sum(n for rid, n in kept.items() if current.home[rid] != base) + fresh
    if in_deltas > settings.delta_share * (sum(kept.values()) + fresh):
        return None
    return len(current.manifest["segments"]) - 1 >= settings.max_deltas


EMBED_BAR_MIN = 1000  # texts to embed from which a terminal shows a progress bar
EMBED_BAR_DELAY = 1.0  # seconds of embedding before the bar shows
EMBED_BATCH = 1000  # texts an embedder without its own progress reporting is given at a time


def _vectors(keys: list[str], texts: list[str], known: dict[str, np.ndarray], embedder: Embedder,
             result: IngestResult, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Vectors for these content keys: the stored ones, the rest embedded now."""
    missing = [i for i, k in enumerate(keys) if k not in known]
    if missing:
        todo = [texts[i] for i in missing]
        with _embedding_progress(len(todo), progress) as report:
            for i, vec in zip(missing, _embed(embedder, todo, report), strict=True):
                known[keys[i]] = vec
    result.embedded = len(missing)
    checkpoint("embedded")
    return np.stack([known[k] for k in keys]) if keys else np.zeros((0, embedder.dim), np.float32)


@contextlib.contextmanager
def _embedding_progress(total: int, progress: Callable[[int, int], None] | None):
    """A callback taking the number of texts embedded so far: `progress`'s, a tqdm bar on a
    terminal's stderr for a large ingest, or None."""
    if progress is not None:
        yield lambda done: progress(done, total)
        return
    if total < EMBED_BAR_MIN or not _stderr_is_terminal():
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="passage", desc="embedding", file=sys.stderr, delay=EMBED_BAR_DELAY) as bar:
        yield lambda done: bar.update(done - bar.n)


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _embed(embedder: Embedder, texts: list[str], report: Callable[[int], None] | None) -> np.ndarray:
    """embed_documents, reporting progress: through the embedder's own `progress` argument where
    it has one (USEEmbedder: one pool of worker processes for all the texts), else batch by batch."""
    if report is None:
        return embedder.embed_documents(texts)
    try:
        takes_progress = "progress" in inspect.signature(embedder.embed_documents).parameters
    except (TypeError, ValueError):
        takes_progress = False
    if takes_progress:
        return embedder.embed_documents(texts, progress=report)
    out = []
    for start in range(0, len(texts), EMBED_BATCH):
        out.append(embedder.embed_documents(texts[start : start + EMBED_BATCH]))
        report(min(start + EMBED_BATCH, len(texts)))
    return np.concatenate(out)


def _order(passages: list[Passage], reports: dict[str, Report]) -> list[Passage]:
    """Passages ordered by report (a report's passages are consecutive rows), with their metadata."""
    passages = sorted(passages, key=lambda p: (reports[p.report_id].source, p.report_id, p.start))
    return [replace(p, org=reports[p.report_id].org, year=reports[p.report_id].year) for p in passages]


def _build_all(staged: Path, current: GenerationInfo | None, reports: dict[str, Report], changed: set[str],
               fresh: list[Passage], log, embedder: Embedder, settings: IndexSettings, result: IngestResult,
               embed_progress: Callable[[int, int], None] | None = None) -> None:
    old = Index(current.path, embedder.name, embedder.dim) if current else None
    try:
        _build_all_from(staged, old, current, reports, changed, fresh, log, embedder, settings, result, embed_progress)
    finally:  # its leases would keep the old generations from the cleanup after this build
        if old is not None:
            old.release()


def _build_all_from(staged: Path, old: Index | None, current: GenerationInfo | None, reports: dict[str, Report],
                    changed: set[str], fresh: list[Passage], log, embedder: Embedder, settings: IndexSettings,
                    result: IngestResult, embed_progress: Callable[[int, int], None] | None = None) -> None:
    kept = [p for p in (old.all_passages() if old else []) if p.report_id in reports and p.report_id not in changed]
    full = {rid: (old.report_by_id[rid] if rid not in changed else r) for rid, r in reports.items()}  # with texts
    passages = _order(kept + fresh, full)
    keys = [_vec_key(embedder.name, embed_text(p)) for p in passages]
    vectors = _vectors(keys, [embed_text(p) for p in passages], find_vectors(current.segment_paths(), keys) if current else {},
                       embedder, result, embed_progress)
    # kept passages keep their report's metadata, so their stored words still hold
    kept_ids = {p.id for p in kept}
    known = {pid: w for pid, w in old.live_words().items() if pid in kept_ids} if old else {}
    build_generation(staged, sorted(full.values(), key=lambda r: (r.source, r.id)), passages, vectors, keys, log,
                     embedder.name, embedder.dim, settings, known_words=known)


def _build_delta(staged: Path, current: GenerationInfo, reports: dict[str, Report], changed: set[str],
                 fresh: list[Passage], log, embedder: Embedder, settings: IndexSettings, result: IngestResult,
                 merge: bool, embed_progress: Callable[[int, int], None] | None = None) -> None:
    entries = [dict(e) for e in current.manifest["segments"]]
    for e in entries:  # reports replaced or removed are deleted from the segment they are in
        gone = {rid for rid, home in current.home.items() if home == e["name"] and (rid not in reports or rid in changed)}
        e["deleted"] = sorted(set(e["deleted"]) | gone)
    kept: list[Passage] = []
    own = {r.id: r for r in reports.values() if r.id in changed}
    known_words: dict[str, list[str]] = {}
    if merge:  # the deltas' live passages move into the new segment, with their words and vectors
        for e in entries[1:]:
            dead = set(e["deleted"])
            with contextlib.closing(connect_ro(current.path.parent / e["name"] / "store.sqlite")) as con:
                seg_reports = {r.id: r for r in read_reports(con)}
                live = [p for p in read_passages(con, seg_reports) if p.report_id not in dead]
                known_words.update(read_words(con, dead))
            kept += live
            own.update((p.report_id, seg_reports[p.report_id]) for p in live)
        entries = entries[:1]
    passages = _order(kept + fresh, own)
    keys = [_vec_key(embedder.name, embed_text(p)) for p in passages]
    vectors = _vectors(keys, [embed_text(p) for p in passages], find_vectors(current.segment_paths(), keys), embedder, result,
                       embed_progress)
    paths = [current.path.parent / e["name"] for e in entries]

    def background_df(tokens: list[str]) -> np.ndarray:
        total = np.zeros(len(tokens), dtype=np.int64)
        for path in paths:
            with contextlib.closing(connect_ro(path / "store.sqlite")) as con:
                total += read_df(con, tokens)
        return total

    background = Background(docs=sum(e["passages"] for e in entries), tokens=sum(e["tokens"] for e in entries),
                            df=background_df)
    entry = build_segment(staged, sorted(own.values(), key=lambda r: (r.source, r.id)), passages, vectors, keys, log,
                          embedder.dim, settings, known_words, background)
    write_generation(staged, entries + ([entry] if passages else []), list(reports.values()), embedder.name,
                     embedder.dim, settings)
