"""The Milvus search backend: one generation of the index held in Milvus, so that any number of
servers on any machines answer from it with nothing on local disk.

A generation is two collections, `<prefix>_<generation>_passages` (a row a passage: its report,
unit and year as scalar fields, its dense vector, and its BM25 terms) and `<prefix>_<generation>_docs`
(the reports with their texts, the document frequencies, the ingest log, what the generation
holds). The alias `<prefix>` names the passages collection of the generation being served; a new
generation is written beside it, checked, and the alias switched in one call (`alter_alias`), which
servers notice as they notice the CURRENT pointer of the embedded index.

BM25 keeps govqa's tokens (jieba words, bigrams, characters; tokenize.py): each passage's tokens
are sent as one short hash a token, separated by spaces, to Milvus's BM25 function under the
standard analyzer (which keeps such terms whole) with govqa's k1 and b: the rankings are the embedded
index's, each score 1 + k1 times its own (Milvus's BM25 has Robertson's (k1 + 1) factor, bm25s's
Lucene variant has not)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from functools import lru_cache

import numpy as np

from .backend import BackendUnavailable, EmbeddedBackend
from .facts import Fact
from .index import Index, IndexDir, IndexSettings, build_generation, index_header
from .store import IndexMismatchError
from .tokenize import BM25_B, BM25_K1, dictionary_hash, get_tokenizer
from .types import Passage, Report

BACKEND = "milvus"
FORMAT = 1  # what a generation's collections hold; a server refuses another
TERM_BYTES = 6  # a token's hash: 48 bits (Milvus hashes terms to 32 bits again), 10 base32 characters
VARCHAR_MAX = 65_535  # Milvus's longest VARCHAR, in bytes
KEY_MAX = 1024  # bytes of a docs key ("d:" and a token: jieba words are short, a longer token gets df 0)
UNIT_CHARS = 300  # characters of a unit's name in the passages' unit field (at most 4 bytes a character)
TEXT_CHUNK = 20_000  # characters of a report's text a docs row holds (3 bytes a Chinese character)
INSERT_BATCH = 500  # rows an insert sends (a passage row is ~30 KB of terms and vector)
KEYS_PER_QUERY = 1000  # keys (or rows) one query asks for
MAX_LIMIT = 16_384  # Milvus's largest top-k and query limit
# A replaced generation is dropped (by a later ingest) only this long after it was replaced: servers
# poll the alias every api.reload_seconds (2 s by default) and finish their requests on it first
GRACE_SECONDS = 60.0
DF_CACHE = 65_536  # document frequencies a loaded generation remembers, and token hashes this process does
# A generation's collections, named as the embedded index's generations: govqa_g000012_passages, govqa_g000012_docs
_COLLECTION = re.compile(r"^(?P<prefix>.+)_(?P<generation>g\d{6})_(?P<kind>passages|docs)$")


@lru_cache(maxsize=DF_CACHE)
def term(token: str) -> str:
    """A token as one term of the standard analyzer: 10 lowercase base32 characters (法律 -> cvn4llnhxu)."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=TERM_BYTES).digest()
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def terms(tokens: Iterable[str]) -> str:
    return " ".join(map(term, tokens))


def _filter_in(field: str, values: Iterable) -> str:
    return f"{field} in {json.dumps(list(values), ensure_ascii=False)}"


class MilvusStore:
    """A connection to Milvus and the generations it holds under `prefix`. Every call that
    reaches Milvus raises BackendUnavailable when it cannot be done (server down, timeout)."""

    def __init__(self, uri: str, token: str = "", prefix: str = "govqa", timeout: float = 10.0):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):  # Milvus's collection names: govqa, govqa_test
            raise ValueError(f"milvus collection prefix must be letters, digits and _, got {prefix!r}")
        self.uri, self.token, self.prefix, self.timeout = uri, token, prefix, timeout
        self._client = None
        self._lock = threading.Lock()

    def call(self, method: str, *args, **kwargs):
        from pymilvus.exceptions import MilvusException

        try:
            client = self.client()
            return getattr(client, method)(*args, timeout=self.timeout, **kwargs)
        except BackendUnavailable:
            raise
        except MilvusException as exc:
            if method in ("query", "search") and self._load(args[0]):  # released by a restart: load, once
                return self.call(method, *args, **kwargs)
            raise BackendUnavailable(BACKEND, f"{method}: {getattr(exc, 'message', exc)}") from exc
        except Exception as exc:  # grpc errors of a server that went away mid-call
            if exc.__class__.__module__.startswith("grpc"):
                raise BackendUnavailable(BACKEND, f"{method}: {exc}") from exc
            raise

    def _load(self, collection: str) -> bool:
        """Load a collection that is not loaded (a Milvus restart releases collections); whether it was."""
        from pymilvus.exceptions import MilvusException

        try:
            state = str(self.client().get_load_state(collection, timeout=self.timeout).get("state", ""))
            if state.endswith("Loaded"):
                return False
            self.client().load_collection(collection, timeout=self.timeout)
            return True
        except MilvusException:
            return False

    def client(self):
        with self._lock:
            if self._client is None:
                from pymilvus import MilvusClient
                from pymilvus.exceptions import MilvusException

                try:
                    self._client = MilvusClient(uri=self.uri, token=self.token, timeout=self.timeout)
                except MilvusException as exc:
                    raise BackendUnavailable(BACKEND, f"cannot connect to {self.uri}: {exc}") from exc
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- generations --------------------------------------------------------------------------

    def passages_name(self, generation: str) -> str:
        return f"{self.prefix}_{generation}_passages"

    def docs_name(self, generation: str) -> str:
        return f"{self.prefix}_{generation}_docs"

    def current(self) -> str | None:
        """The generation the alias names (None before the first ingest)."""
        if self.prefix not in self.call("list_aliases").get("aliases", []):
            return None
        found = _COLLECTION.match(self.call("describe_alias", self.prefix)["collection_name"])
        return found["generation"] if found and found["kind"] == "passages" else None

    def generations(self) -> list[str]:
        """Generations with collections under the prefix, oldest first."""
        names = set()
        for name in self.call("list_collections"):
            found = _COLLECTION.match(name)
            if found and found["prefix"] == self.prefix:
                names.add(found["generation"])
        return sorted(names)

    def next_name(self) -> str:
        numbers = [int(g[1:]) for g in self.generations()]
        current = self.current()
        if current:
            numbers.append(int(current[1:]))
        return f"g{(max(numbers) + 1 if numbers else 1):06d}"

    def drop(self, generation: str) -> None:
        for name in (self.passages_name(generation), self.docs_name(generation)):
            if self.call("has_collection", name):
                self.call("drop_collection", name)

    def cleanup(self, keep: int, grace: float = GRACE_SECONDS) -> list[str]:
        """Drop generations the alias never named (a build that failed or was killed: newer than the
        current one), and all but the newest `keep` (the current one is always kept, and the one it
        replaced) that were replaced more than `grace` seconds ago (servers move off a replaced
        generation within a poll, api.reload_seconds)."""
        current = self.current()
        names = [g for g in self.generations() if g != current]
        never = [g for g in names if current is None or g > current]
        older = [g for g in names if g not in never]
        drop = list(never)
        now = time.time()
        for g in older[: max(0, len(older) - max(keep - 1, 1))]:
            successor = min(n for n in [*older, current] if n > g)
            if now - self.created(successor) > grace:
                drop.append(g)
        for g in drop:
            self.drop(g)
        return drop

    def created(self, generation: str) -> float:
        """When a generation was written (0 when it cannot be told)."""
        found = self.call("query", self.docs_name(generation), filter=_filter_in("key", ["info"]), output_fields=["body"],
                          limit=1) if self.call("has_collection", self.docs_name(generation)) else []
        return float(json.loads(found[0]["body"]).get("created", 0)) if found else 0.0

    def publish(self, generation: str) -> None:
        """Point the alias at this generation (one call: servers see the old one or the new one)."""
        if self.current() is None:
            self.call("create_alias", self.passages_name(generation), self.prefix)
        else:
            self.call("alter_alias", self.passages_name(generation), self.prefix)

    # -- writing ------------------------------------------------------------------------------

    def write(self, generation: str, index: Index, embedder_name: str, dim: int, settings: IndexSettings,
              log_entries: list[tuple[float, str, str, str]], checkpoint: Callable[[str], None] = lambda stage: None) -> dict:
        """Write a loaded embedded generation (its live reports and passages, renumbered in order)
        as a Milvus generation, unpublished; returns what it holds. Checked: the row counts Milvus
        reports are the ones written."""
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        tokenizer = get_tokenizer()
        reports = index.reports
        words = index.live_words()
        passages_name, docs_name = self.passages_name(generation), self.docs_name(generation)
        self.drop(generation)

        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("report", DataType.VARCHAR, max_length=64)
        schema.add_field("unit", DataType.VARCHAR, max_length=UNIT_CHARS * 4)
        schema.add_field("year", DataType.INT64)  # -1: not known
        schema.add_field("pid", DataType.VARCHAR, max_length=64)
        schema.add_field("section", DataType.VARCHAR, max_length=VARCHAR_MAX)
        schema.add_field("start", DataType.INT64)
        schema.add_field("end", DataType.INT64)
        schema.add_field("facts", DataType.VARCHAR, max_length=VARCHAR_MAX)
        schema.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_MAX, enable_analyzer=True,
                         analyzer_params={"tokenizer": "standard"})
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                                     output_field_names=["sparse"]))
        size = int(index.passage_counts().sum())
        params = MilvusClient.prepare_index_params()
        params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                         params={"params": {"bm25_k1": BM25_K1, "bm25_b": BM25_B}})
        params.add_index(field_name="vector", **dense_index(size, settings))
        for field in ("report", "unit", "year"):
            params.add_index(field_name=field, index_type="INVERTED")
        self.call("create_collection", passages_name, schema=schema, index_params=params)

        docs = MilvusClient.create_schema(auto_id=False)
        docs.add_field("key", DataType.VARCHAR, is_primary=True, max_length=KEY_MAX)
        docs.add_field("body", DataType.VARCHAR, max_length=VARCHAR_MAX)
        docs.add_field("dummy", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
        docs_params = MilvusClient.prepare_index_params()
        docs_params.add_index(field_name="dummy", index_type="FLAT", metric_type="IP")
        self.call("create_collection", docs_name, schema=docs, index_params=docs_params)

        batch: list[dict] = []
        row = 0
        first_rows: dict[str, int] = {}
        tokens_total = 0
        for report in reports:
            rows = index.rows_of([report.id])
            first_rows[report.id] = row
            passages = index.passages(rows.tolist())
            vectors = index.vectors_at(rows)
            facts: dict[int, list[dict]] = {}
            for f in index.facts(rows):
                facts.setdefault(f.row, []).append({k: v for k, v in asdict(f).items() if k not in ("report_id", "row")})
            for old, p, vec in zip(rows.tolist(), passages, vectors, strict=True):
                text = index_header(report, p.section) + "\n" + p.text
                own = words.get(p.id)
                tokens = (own if own is not None else tokenizer.index_words(text)) + tokenizer.ngrams(text)
                tokens_total += len(tokens)
                record = {"row": row, "report": report.id, "unit": report.org[:UNIT_CHARS], "year": report.year or -1,
                          "pid": p.id, "section": p.section, "start": p.start, "end": p.end,
                          "facts": json.dumps(facts.get(old, []), ensure_ascii=False), "terms": terms(tokens),
                          "vector": vec.astype(np.float32).tolist()}
                for field in ("terms", "facts", "section"):
                    if len(record[field].encode("utf-8")) > VARCHAR_MAX:
                        raise ValueError(f"passage {p.id} of {report.source}: its {field} exceed Milvus's {VARCHAR_MAX} "
                                         "bytes; chunk the report finer")
                batch.append(record)
                row += 1
                if len(batch) >= INSERT_BATCH:
                    self.call("insert", passages_name, batch)
                    batch = []
        if batch:
            self.call("insert", passages_name, batch)
        checkpoint("inserted")

        counts = index.passage_counts()
        docs_rows = []
        for n, report in enumerate(reports):
            chunks = [report.text[i : i + TEXT_CHUNK] for i in range(0, len(report.text), TEXT_CHUNK)] or [""]
            head = {"report": _report_record(report) | {"text": ""}, "first_row": first_rows[report.id],
                    "passages": int(counts[n]), "chunks": len(chunks)}
            docs_rows.append({"key": f"r:{n:08d}", "body": json.dumps(head, ensure_ascii=False)})
            docs_rows += [{"key": f"t:{n:08d}:{i:06d}", "body": c} for i, c in enumerate(chunks)]
        docs_rows += [{"key": f"l:{i:08d}", "body": json.dumps(e, ensure_ascii=False)} for i, e in enumerate(log_entries)]
        vocab: dict[str, int] = {}
        for seg in index.segments:
            if seg.bm25 is None:
                continue
            indptr = seg.bm25.scores["indptr"]
            for token, at in seg.bm25.vocab_dict.items():
                vocab[token] = vocab.get(token, 0) + int(indptr[at + 1] - indptr[at])
        docs_rows += [{"key": "d:" + t, "body": str(df)} for t, df in vocab.items()
                      if len(t.encode("utf-8")) <= KEY_MAX - 2]
        info = {"format": FORMAT, "created": time.time(), "embedder": embedder_name, "dim": dim, "dictionary": dictionary_hash(),
                "reports": len(reports), "passages": row, "tokens": tokens_total, "log": len(log_entries)}
        docs_rows.append({"key": "info", "body": json.dumps(info)})
        for i in range(0, len(docs_rows), INSERT_BATCH * 4):
            self.call("insert", docs_name, [d | {"dummy": [0.0, 0.0]} for d in docs_rows[i : i + INSERT_BATCH * 4]])
        # one flush: the passages become one sealed segment, whose BM25 statistics are the whole
        # collection's (a Milvus Lite memtable scores a filtered search over the filtered rows only)
        self.call("flush", passages_name)
        self.call("flush", docs_name)
        self.call("load_collection", passages_name)
        self.call("load_collection", docs_name)
        found = self.call("query", passages_name, filter="", output_fields=["count(*)"])[0]["count(*)"]
        if found != row:
            raise IndexMismatchError(f"milvus generation {generation}: {found} passages stored, {row} written")
        return info


def _best_first(rows: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """Rows by score, best first, ties by row (as the embedded index orders them)."""
    return rows[np.lexsort((rows, -scores))][:n]


def dense_index(size: int, settings: IndexSettings) -> dict:
    """The dense index for a collection of `size` passages: exact (FLAT) up to settings.exact_max,
    as the embedded index; above, HNSW (Milvus's graph index; its M and efConstruction from the
    settings), whose recall must be measured on the cluster (docs/scale-out.md)."""
    if size <= settings.exact_max:
        return {"index_type": "FLAT", "metric_type": "IP"}
    return {"index_type": "HNSW", "metric_type": "IP",
            "params": {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction}}


def _report_record(report: Report) -> dict:
    return asdict(report)


def _report_from(record: dict, text: str) -> Report:
    return Report(**(record | {"text": text, "aliases": tuple(record["aliases"]), "review": tuple(record["review"]),
                              "spans": tuple(tuple(s) for s in record["spans"]), "pages": tuple(record.get("pages", ()))}))


class MilvusBackend:
    """One Milvus generation, loaded: its reports (with texts) in memory, everything else asked of
    Milvus per query. Read-only, safe to share between threads."""

    backend = BACKEND

    def __init__(self, store: MilvusStore, generation: str, embedder_name: str, dim: int,
                 search: IndexSettings | None = None):
        search = search or IndexSettings()
        self.store = store
        self.generation = generation
        self.collection = store.passages_name(generation)
        self.docs = store.docs_name(generation)
        self.search_params = {"ef": search.hnsw_ef_search}
        info = self._docs(["info"]).get("info")
        if info is None:
            raise IndexMismatchError(f"milvus generation {generation} has no info row (an unfinished build?)")
        self.info = json.loads(info)
        if self.info.get("format") != FORMAT:
            raise IndexMismatchError(f"milvus generation {generation} is of format {self.info.get('format')}, "
                                     f"this govqa reads {FORMAT}: ingest again")
        if (self.info["embedder"], int(self.info["dim"])) != (embedder_name, dim):
            raise IndexMismatchError(f"milvus generation {generation} was built with embedder {self.info['embedder']} "
                                     f"(dim {self.info['dim']}), configured is {embedder_name} (dim {dim}): ingest again")
        if self.info["dictionary"] != dictionary_hash():
            raise IndexMismatchError(f"milvus generation {generation} was tokenised with another dictionary: ingest again")
        n = int(self.info["reports"])
        heads = self._docs([f"r:{i:08d}" for i in range(n)])
        records = [json.loads(heads[f"r:{i:08d}"]) for i in range(n)]
        keys = [f"t:{i:08d}:{c:06d}" for i, r in enumerate(records) for c in range(r["chunks"])]
        texts = self._docs(keys)
        self.reports = [_report_from(r["report"], "".join(texts[f"t:{i:08d}:{c:06d}"] for c in range(r["chunks"])))
                        for i, r in enumerate(records)]
        self.report_by_id = {r.id: r for r in self.reports}
        self._position = {r.id: i for i, r in enumerate(self.reports)}
        self._lo = np.array([r["first_row"] for r in records], dtype=np.int64)
        self._hi = self._lo + np.array([r["passages"] for r in records], dtype=np.int64)
        self.size = int(self.info["passages"])
        self.doc_count = max(self.size, 1)
        self._df: dict[str, int] = {}
        self._by_year: dict[int | None, set[str]] = {}
        for r in self.reports:
            self._by_year.setdefault(r.year, set()).add(r.id)

    def _docs(self, keys: list[str]) -> dict[str, str]:
        out = {}
        for i in range(0, len(keys), KEYS_PER_QUERY):
            chunk = keys[i : i + KEYS_PER_QUERY]
            for r in self.store.call("query", self.docs, filter=_filter_in("key", chunk), output_fields=["key", "body"],
                                     limit=len(chunk)):
                out[r["key"]] = r["body"]
        return out

    def _rows(self, rows, fields: list[str]) -> dict[int, dict]:
        rows = sorted({int(r) for r in rows})
        out = {}
        for i in range(0, len(rows), KEYS_PER_QUERY):
            chunk = rows[i : i + KEYS_PER_QUERY]
            for r in self.store.call("query", self.collection, filter=_filter_in("row", chunk),
                                     output_fields=["row", *fields], limit=len(chunk)):
                out[int(r["row"])] = r
        return out

    def rows_of(self, report_ids) -> np.ndarray:
        positions = sorted({self._position[r] for r in report_ids if r in self._position}, key=lambda p: self._lo[p])
        if not positions:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.arange(self._lo[p], self._hi[p], dtype=np.int64) for p in positions])

    def report_at(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(self._lo, kind="stable")
        at = np.searchsorted(self._lo[order], rows, side="right") - 1
        found = order[at.clip(0)]
        ok = (at >= 0) & (rows < self._hi[found])
        return np.where(ok, found, -1).astype(np.int32)

    def passage_counts(self) -> np.ndarray:
        return self._hi - self._lo

    def _filter(self, report_ids: list[str] | None) -> str:
        """The scalar filter for these reports: by year when they are all the reports of some years
        (a question naming only a year: one short expression however many reports), else by id."""
        if report_ids is None:
            return ""
        wanted = set(report_ids)
        years = {self.report_by_id[r].year for r in wanted if r in self.report_by_id}
        if wanted == {r for y in years for r in self._by_year[y]}:
            return _filter_in("year", sorted(-1 if y is None else y for y in years))
        return _filter_in("report", report_ids)

    def _search(self, data, field: str, n: int, filter: str, params: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        rows, scores = [], []
        found = self.store.call("search", self.collection, data=[data], anns_field=field, limit=min(n, MAX_LIMIT),
                                filter=filter, output_fields=["row"], search_params={"params": params or {}})
        for hit in found[0]:
            rows.append(int(hit["row"] if "row" in hit else hit["id"]))
            scores.append(float(hit["distance"]))
        return np.array(rows, dtype=np.int64), np.array(scores, dtype=np.float32)

    def lexical_top(self, tokens: list[str], n: int, report_ids: list[str] | None = None) -> np.ndarray:
        if not tokens or (report_ids is not None and not report_ids):
            return np.zeros(0, dtype=np.int64)
        rows, scores = self._search(terms(tokens), "sparse", n, self._filter(report_ids))
        # BM25 scores are positive; Milvus Lite gives them negated (as distances), Milvus as they are
        scores = np.abs(scores)
        keep = scores > 0
        return _best_first(rows[keep], scores[keep], n)

    def lexical_scores(self, tokens: list[str], rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(rows.size, dtype=np.float32)
        if not tokens or not rows.size:
            return out
        query = terms(tokens)
        where = {int(r): i for i, r in enumerate(rows)}
        for i in range(0, rows.size, MAX_LIMIT):
            chunk = rows[i : i + MAX_LIMIT]
            found, scores = self._search(query, "sparse", chunk.size, _filter_in("row", chunk.tolist()))
            for r, s in zip(found.tolist(), np.abs(scores).tolist(), strict=True):
                out[where[r]] = s
        return out

    def dense_top(self, vector: np.ndarray, n: int, report_ids: list[str] | None = None) -> np.ndarray:
        if report_ids is not None and not report_ids:
            return np.zeros(0, dtype=np.int64)
        rows, scores = self._search(np.asarray(vector, dtype=np.float32).tolist(), "vector", n, self._filter(report_ids),
                                    self.search_params)
        return _best_first(rows, scores, n)

    def vectors_at(self, rows: np.ndarray) -> np.ndarray:
        found = self._rows(rows, ["vector"])
        return np.array([found[int(r)]["vector"] for r in rows], dtype=np.float32).reshape(len(rows), int(self.info["dim"]))

    def passages(self, rows: list[int]) -> list[Passage]:
        found = self._rows(rows, ["report", "pid", "section", "start", "end"])
        out = []
        for r in rows:
            rec = found[int(r)]
            report = self.report_by_id[rec["report"]]
            start, end = int(rec["start"]), int(rec["end"])
            out.append(Passage(id=rec["pid"], report_id=report.id, section=rec["section"], text=report.text[start:end],
                               start=start, end=end, org=report.org, year=report.year, source=report.source))
        return out

    def facts(self, rows) -> list[Fact]:
        found = self._rows(np.unique(np.asarray(rows, dtype=np.int64)), ["report", "facts"])
        out = []
        for row, rec in found.items():
            for f in json.loads(rec["facts"]):
                out.append(Fact(report_id=rec["report"], row=row, **(f | {"qualifiers": tuple(f["qualifiers"])})))
        return sorted(out, key=lambda f: (f.row, f.start))

    def df(self, token: str) -> int:
        df = self._df.get(token)
        if df is None:
            body = self._docs(["d:" + token]).get("d:" + token)
            df = int(body) if body is not None else 0
            if len(self._df) < DF_CACHE:
                self._df[token] = df
        return df

    def idf(self, token: str) -> float:
        df = self.df(token)
        return float(math.log(1 + (self.doc_count - df + 0.5) / (df + 0.5)))

    def log(self) -> list[tuple[float, str, str, str]]:
        n = int(self.info.get("log", 0))
        found = self._docs([f"l:{i:08d}" for i in range(n)])
        return [tuple(json.loads(found[f"l:{i:08d}"])) for i in range(n)]


def materialise(store: MilvusStore, generation: str, root: IndexDir, embedder_name: str, dim: int,
                settings: IndexSettings) -> str:
    """Copy a Milvus generation into an empty local index directory as its first generation (its
    reports, passages, vectors and ingest log), for an ingest to start from; returns its name."""
    from .ingest import _vec_key, embed_text

    backend = MilvusBackend(store, generation, embedder_name, dim, settings)
    passages: list[Passage] = []
    vectors = []
    for start in range(0, backend.size, KEYS_PER_QUERY):
        rows = list(range(start, min(start + KEYS_PER_QUERY, backend.size)))
        passages += backend.passages(rows)
        vectors.append(backend.vectors_at(np.array(rows)))
    name = root.next_name()
    staged = root.staging(name)
    keys = [_vec_key(embedder_name, embed_text(p)) for p in passages]
    build_generation(staged, backend.reports, passages, np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32),
                     keys, backend.log(), embedder_name, dim, settings)
    root.publish(name, staged)
    return name


def ingest_milvus(store: MilvusStore, paths: Iterable, embedder, *, keep_generations: int = 3,
                  settings: IndexSettings | None = None, rebuild: bool = False, wait: bool = True, **options):
    """`ingest` (ingest.py) into Milvus: the served generation is copied into a temporary local
    index, the files ingested into it as into any local index, and the result written to Milvus as
    a new generation, checked, and published by switching the alias; generations beyond
    `keep_generations`, and any an interrupted ingest left, are dropped. Until the switch the
    servers answer from the old generation; an ingest that fails or is killed leaves the alias
    where it was. Each ingest writes the whole generation (so that no server ever reads one half
    written), which costs what the index holds; ingests are not serialised across machines, so run
    them from one place."""
    import tempfile

    from .index import checkpoint
    from .ingest import ingest

    settings = replace(settings or IndexSettings(), delta_share=0.0)  # the local copy is built whole each time
    with tempfile.TemporaryDirectory(prefix="govqa-milvus-ingest-") as tmp:
        root = IndexDir(tmp)
        store.cleanup(keep_generations)  # what an ingest that failed or was killed left
        current = store.current()
        start = materialise(store, current, root, embedder.name, embedder.dim, settings) if current and not rebuild else None
        result = ingest(tmp, paths, embedder, settings=settings, keep_generations=1, wait=wait, **options)
        if result.generation is None or result.generation == start:  # nothing changed
            result.generation = current
            return result
        index = Index(root.current_path(), embedder.name, embedder.dim)
        try:
            name = store.next_name()
            store.write(name, index, embedder.name, embedder.dim, settings, EmbeddedBackend(index).log(), checkpoint)
        finally:
            index.release()
        checkpoint("written")
        store.publish(name)
        store.cleanup(keep_generations)
        result.generation = name
    return result
