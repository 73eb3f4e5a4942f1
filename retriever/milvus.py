"""The Milvus search backend: generations of the index held in Milvus, so that any number of
servers on any machines answer from it with nothing on local disk.

A build is two collections, `<prefix>_<build>_passages` (a row a passage: its report, unit and year
as scalar fields, its dense vector, its BM25 terms, and the generations that see it) and
`<prefix>_<build>_docs` (the reports with their texts, the document frequencies, the ingest log, and
each generation's report list). A build holds a line of generations: the first writes every report,
each later one (a small ingest) inserts the rows of the reports it adds and marks the rows of those
it removes or replaces, so that it costs what changed, not what the index holds. A row carries
`gen_from` and `gen_to`: generation G sees the rows with gen_from <= G < gen_to, and every search
and query of a generation says so, so that no request mixes two generations. A generation is
published by one write, the build's `current` row (and, for a new build, the alias `<prefix>`,
switched in one call), which servers poll as they poll the CURRENT pointer of the embedded index.

BM25 keeps govqa's tokens (jieba words, bigrams, characters; tokenize.py): each passage's tokens
are sent as one short hash a token, separated by spaces, to Milvus's BM25 function under the
standard analyzer (which keeps such terms whole) with govqa's k1 and b: the rankings are the embedded
index's, each score 1 + k1 times its own (Milvus's BM25 has Robertson's (k1 + 1) factor, bm25s's
Lucene variant has not). Milvus's statistics count every row of the collection, seen or not by the
generation searched, until rows no served generation sees are deleted (docs/scale-out.md)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from .backend import BackendUnavailable
from .facts import Fact, passage_facts
from .index import IndexSettings, checkpoint, index_header
from .store import IndexMismatchError
from .tokenize import BM25_B, BM25_K1, dictionary_hash, get_tokenizer
from .types import Passage, Report

BACKEND = "milvus"
FORMAT = 2  # what a build's collections hold; a server refuses another
TERM_BYTES = 6  # a token's hash: 48 bits (Milvus hashes terms to 32 bits again), 10 base32 characters
VARCHAR_MAX = 65_535  # Milvus's longest VARCHAR, in bytes
KEY_MAX = 128  # bytes of a docs key: "t:<report id>:<generation>:<piece>" is 34
UNIT_CHARS = 300  # characters of a unit's name in the passages' unit field (at most 4 bytes a character)
TEXT_CHUNK = 20_000  # characters of a report's text a docs row holds (3 bytes a Chinese character)
LIST_CHUNK = 60_000  # characters of a generation's report list (ASCII JSON) a docs row holds
INSERT_BATCH = 500  # rows an insert sends (a passage row is ~30 KB of terms and vector)
KEYS_PER_QUERY = 1000  # keys (or rows) one query asks for
LEFTOVER_BATCH = 1000  # rows of an interrupted ingest undone at a time (each brings its terms, ~15 KB)
MAX_LIMIT = 16_384  # Milvus's largest top-k and query limit
FOREVER = 2**62  # gen_to of a row that no generation has removed yet
CURRENT = "current"  # the docs key naming the build's served generation
# A replaced generation is dropped (by a later ingest) only this long after it was replaced: servers
# poll every api.reload_seconds (2 s by default) and finish their requests on it first
GRACE_SECONDS = 60.0
DF_CACHE = 65_536  # document frequencies a loaded generation remembers, and token hashes this process does
# A build's collections, named as its first generation: govqa_g000012_passages, govqa_g000012_docs
_COLLECTION = re.compile(r"^(?P<prefix>.+)_(?P<generation>g\d{6})_(?P<kind>passages|docs)$")


@lru_cache(maxsize=DF_CACHE)
def term(token: str) -> str:
    """A token as one term of the standard analyzer: 10 lowercase base32 characters (法律 -> cvn4llnhxu)."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=TERM_BYTES).digest()
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def terms(tokens: Iterable[str]) -> str:
    return " ".join(map(term, tokens))


def number(generation: str) -> int:
    return int(generation[1:])


def name(n: int) -> str:
    return f"g{n:06d}"


def visible(generation: str) -> str:
    """The filter of the rows a generation sees."""
    n = number(generation)
    return f"gen_from <= {n} and gen_to > {n}"


def _filter_in(field: str, values: Iterable) -> str:
    return f"{field} in {json.dumps(list(values), ensure_ascii=False)}"


def _and(*filters: str) -> str:
    return " and ".join(f"({f})" for f in filters if f)


def df_at(history: list[list[int]], n: int) -> int:
    """A token's document frequency in generation n, from its history [[generation, df], ...]
    (ascending): the latest entry at or before n."""
    found = 0
    for g, df in history:
        if g > n:
            break
        found = df
    return found


class MilvusStore:
    """A connection to Milvus and the builds it holds under `prefix`. Every call that reaches
    Milvus raises BackendUnavailable when it cannot be done (server down, timeout)."""

    def __init__(self, uri: str, token: str = "", prefix: str = "govqa", timeout: float = 10.0):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):  # Milvus's collection names: govqa, govqa_test
            raise ValueError(f"milvus collection prefix must be letters, digits and _, got {prefix!r}")
        self.uri, self.token, self.prefix, self.timeout = uri, token, prefix, timeout
        self._client = None
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # rows written, by call ("insert", "upsert", "delete": calls)

    def call(self, method: str, *args, **kwargs):
        from pymilvus.exceptions import MilvusException

        try:
            client = self.client()
            out = getattr(client, method)(*args, timeout=self.timeout, **kwargs)
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
        if method in ("insert", "upsert"):
            self.calls[f"{method}:{args[0].rsplit('_', 1)[-1]}"] += len(args[1])
        return out

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

    # -- builds and generations -------------------------------------------------------------

    def passages_name(self, build: str) -> str:
        return f"{self.prefix}_{build}_passages"

    def docs_name(self, build: str) -> str:
        return f"{self.prefix}_{build}_docs"

    def served_build(self) -> str | None:
        """The build the alias names (None before the first ingest)."""
        if self.prefix not in self.call("list_aliases").get("aliases", []):
            return None
        found = _COLLECTION.match(self.call("describe_alias", self.prefix)["collection_name"])
        return found["generation"] if found and found["kind"] == "passages" else None

    def current(self) -> str | None:
        """The generation served (None before the first ingest)."""
        build = self.served_build()
        return self.docs(build, [CURRENT]).get(CURRENT) if build else None

    def builds(self) -> list[str]:
        """Builds with collections under the prefix, oldest first."""
        names = set()
        for found in map(_COLLECTION.match, self.call("list_collections")):
            if found and found["prefix"] == self.prefix:
                names.add(found["generation"])
        return sorted(names)

    def build_of(self, generation: str) -> str:
        """The build that holds a published generation (the newest build not after it that has its info)."""
        for build in sorted((b for b in self.builds() if b <= generation), reverse=True):
            if self.docs(build, ["i:" + generation]):
                return build
        raise IndexMismatchError(f"milvus generation {generation} is in no build under {self.prefix} (dropped?)")

    def published(self, build: str) -> dict[str, dict]:
        """The build's published generations (and any an interrupted ingest left) and their infos, by name."""
        found = self.call("query", self.docs_name(build), filter='key like "i:%"', output_fields=["key", "body"],
                          limit=MAX_LIMIT)
        return dict(sorted((r["key"][2:], json.loads(r["body"])) for r in found))

    def docs(self, build: str, keys: list[str]) -> dict[str, str]:
        out = {}
        for i in range(0, len(keys), KEYS_PER_QUERY):
            chunk = keys[i : i + KEYS_PER_QUERY]
            for r in self.call("query", self.docs_name(build), filter=_filter_in("key", chunk), output_fields=["key", "body"],
                               limit=len(chunk)):
                out[r["key"]] = r["body"]
        return out

    def put_docs(self, build: str, rows: list[dict]) -> None:
        for i in range(0, len(rows), INSERT_BATCH * 4):
            self.call("upsert", self.docs_name(build), [d | {"dummy": [0.0, 0.0]} for d in rows[i : i + INSERT_BATCH * 4]])

    def delete_docs(self, build: str, keys: list[str]) -> None:
        for i in range(0, len(keys), KEYS_PER_QUERY):
            self.call("delete", self.docs_name(build), ids=keys[i : i + KEYS_PER_QUERY])

    def report_list(self, build: str, generation: str, info: dict) -> list[list]:
        """A generation's reports, by (source, id): [id, generation that wrote it, first row, passages, text pieces]."""
        keys = [f"m:{generation}:{i:04d}" for i in range(int(info["pieces"]))]
        found = self.docs(build, keys)
        return json.loads("".join(found[k] for k in keys)) if keys else []

    def drop_build(self, build: str) -> None:
        for collection in (self.passages_name(build), self.docs_name(build)):
            if self.call("has_collection", collection):
                self.call("drop_collection", collection)

    def create(self, build: str, dim: int, size: int, settings: IndexSettings) -> None:
        """The collections of a new build (`size`: the passages it starts with, for the dense index kind)."""
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        self.drop_build(build)
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        schema.add_field("report", DataType.VARCHAR, max_length=64)
        schema.add_field("unit", DataType.VARCHAR, max_length=UNIT_CHARS * 4)
        schema.add_field("year", DataType.INT64)  # -1: not known
        schema.add_field("gen_from", DataType.INT64)  # the first generation that sees the row
        schema.add_field("gen_to", DataType.INT64)  # the first that does not (FOREVER: none yet)
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
        params = MilvusClient.prepare_index_params()
        params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                         params={"params": {"bm25_k1": BM25_K1, "bm25_b": BM25_B}})
        params.add_index(field_name="vector", **dense_index(size, settings))
        for field in ("report", "unit", "year", "gen_from", "gen_to"):
            params.add_index(field_name=field, index_type="INVERTED")
        # Strong: a server that has seen a generation published reads all of its rows
        self.call("create_collection", self.passages_name(build), schema=schema, index_params=params,
                  consistency_level="Strong")
        docs = MilvusClient.create_schema(auto_id=False)
        docs.add_field("key", DataType.VARCHAR, is_primary=True, max_length=KEY_MAX)
        docs.add_field("body", DataType.VARCHAR, max_length=VARCHAR_MAX)
        docs.add_field("dummy", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
        docs_params = MilvusClient.prepare_index_params()
        docs_params.add_index(field_name="dummy", index_type="FLAT", metric_type="IP")
        self.call("create_collection", self.docs_name(build), schema=docs, index_params=docs_params,
                  consistency_level="Strong")

    def publish(self, build: str, generation: str) -> None:
        """Serve this generation: one upsert of the build's `current` row, and for a new build one
        alias call (servers see the old generation or the new one)."""
        self.put_docs(build, [{"key": CURRENT, "body": generation}])
        served = self.served_build()
        if served is None:
            self.call("create_alias", self.passages_name(build), self.prefix)
        elif served != build:
            self.call("alter_alias", self.passages_name(build), self.prefix)

    # -- interrupted ingests and old generations --------------------------------------------------

    def undo(self, build: str, generation: str) -> int:
        """Clear what an ingest after `generation` (the served one) left when it failed or was
        killed: its rows deleted, its marks on older rows taken back, its document-frequency
        entries and its generations' docs removed. The rows left say which tokens it counted, so
        the frequencies are fixed first; repeated after another interruption, it finishes the job.
        Returns the rows undone."""
        n = number(generation)
        passages = self.passages_name(build)
        where = f"gen_from > {n} or (gen_to > {n} and gen_to < {FOREVER})"
        undone = 0
        while rows := self.call("query", passages, filter=where, output_fields=["row", "gen_from", "terms"],
                                limit=LEFTOVER_BATCH):
            touched = sorted({t for r in rows for t in r["terms"].split()})
            found = self.docs(build, ["d:" + t for t in touched])
            fixed = []
            for key, body in found.items():
                history = json.loads(body)
                kept = [h for h in history if h[0] <= n]
                if kept != history:
                    fixed.append({"key": key, "body": json.dumps(kept)})
            self.put_docs(build, fixed)
            marked = [{"row": r["row"], "gen_to": FOREVER} for r in rows if r["gen_from"] <= n]
            added = [r["row"] for r in rows if r["gen_from"] > n]
            if marked:
                self.call("upsert", passages, marked, partial_update=True)
            if added:
                self.call("delete", passages, ids=added)
            undone += len(rows)
        stale = [g for g in self.published(build) if g > generation]
        for g in stale:
            self.call("delete", self.docs_name(build), filter=f'key like "m:{g}:%" or key == "i:{g}"')
        return undone

    def cleanup(self, keep: int, grace: float = GRACE_SECONDS) -> list[str]:
        """Drop what an interrupted ingest left (builds the alias never named, rows and docs of a
        generation never published), and the generations beyond the newest `keep` (the served one
        is always kept, and the one it replaced) that were replaced more than `grace` seconds ago
        (servers move off a replaced generation within a poll, api.reload_seconds): whole builds
        none of whose generations is kept, and in the served build the rows no kept generation sees
        and the docs of the generations dropped. Returns the generations and builds dropped."""
        served = self.served_build()
        current = self.current() if served else None
        dropped = []
        for build in self.builds():
            # never published: an interrupted first ingest or rebuild (the alias's build stays: one
            # without a current row is of an older format, which a --rebuild replaces)
            if build != served and (current is None or build > current):
                self.drop_build(build)
                dropped.append(build)
        if current is None:
            return dropped
        self.undo(served, current)
        infos = {b: self.published(b) for b in self.builds()}
        generations = sorted((g, b) for b, gens in infos.items() for g in gens if g <= current)
        older = [g for g, _ in generations if g < current]
        kept = {current, *older[len(older) - max(keep - 1, 1):]}
        created = {g: float(infos[b][g].get("created", 0)) for g, b in generations}
        now = time.time()
        for (g, _), (successor, _) in zip(generations, generations[1:], strict=False):
            if now - created[successor] <= grace:  # replaced moments ago: servers may still answer from it
                kept.add(g)
        for build, gens in infos.items():
            if build != served and not kept & set(gens):
                self.drop_build(build)
                dropped += [build, *[g for g in gens if g != build]]
        gone = [g for g in infos[served] if g not in kept and g < current]
        if gone:
            oldest = min(number(g) for g in infos[served] if g in kept)
            self.call("delete", self.passages_name(served), filter=f"gen_to <= {oldest}")
            lists = {g: self.report_list(served, g, infos[served][g]) for g in infos[served] if g <= current}
            live = {(e[0], e[1]) for g in kept & set(lists) for e in lists[g]}
            dead = {(e[0], e[1], e[4]) for g in gone for e in lists[g] if (e[0], e[1]) not in live}
            keys = [f"r:{rid}:{g}" for rid, g, _ in dead] + [f"t:{rid}:{g}:{c:06d}" for rid, g, n in dead for c in range(n)]
            for g in gone:
                keys += ["i:" + g] + [f"m:{g}:{i:04d}" for i in range(int(infos[served][g]["pieces"]))]
            self.delete_docs(served, keys)
            dropped += gone
        return dropped


def _best_first(rows: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """Rows by score, best first, ties by row (as the embedded index orders them)."""
    return rows[np.lexsort((rows, -scores))][:n]


def dense_index(size: int, settings: IndexSettings) -> dict:
    """The dense index for a build starting with `size` passages: exact (FLAT) up to
    settings.exact_max, as the embedded index; above, HNSW (Milvus's graph index; its M and
    efConstruction from the settings), whose recall must be measured on the cluster
    (docs/scale-out.md). Later ingests into the build keep its kind; a rebuild chooses again."""
    if size <= settings.exact_max:
        return {"index_type": "FLAT", "metric_type": "IP"}
    return {"index_type": "HNSW", "metric_type": "IP",
            "params": {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction}}


def _report_record(report: Report) -> dict:
    return asdict(report) | {"text": ""}


def _report_from(record: dict, text: str) -> Report:
    return Report(**(record | {"text": text, "aliases": tuple(record["aliases"]), "review": tuple(record["review"]),
                              "spans": tuple(tuple(s) for s in record["spans"]), "pages": tuple(record.get("pages", ()))}))


class MilvusBackend:
    """One Milvus generation, loaded: its reports (with texts) in memory, everything else asked of
    Milvus per query, always of the rows this generation sees. Read-only, safe to share between
    threads. `reuse`: a loaded generation whose reports' texts this one may share."""

    backend = BACKEND

    def __init__(self, store: MilvusStore, generation: str, embedder_name: str, dim: int,
                 search: IndexSettings | None = None, reuse: MilvusBackend | None = None):
        search = search or IndexSettings()
        self.store = store
        self.generation = generation
        self.number = number(generation)
        self.build = store.build_of(generation)
        self.collection = store.passages_name(self.build)
        self.visible = visible(generation)
        self.search_params = {"ef": search.hnsw_ef_search}
        self.info = json.loads(store.docs(self.build, ["i:" + generation])["i:" + generation])
        if self.info.get("format") != FORMAT:
            raise IndexMismatchError(f"milvus generation {generation} is of format {self.info.get('format')}, "
                                     f"this govqa reads {FORMAT}: ingest again with --rebuild")
        if (self.info["embedder"], int(self.info["dim"])) != (embedder_name, dim):
            raise IndexMismatchError(f"milvus generation {generation} was built with embedder {self.info['embedder']} "
                                     f"(dim {self.info['dim']}), configured is {embedder_name} (dim {dim}): ingest again")
        if self.info["dictionary"] != dictionary_hash():
            raise IndexMismatchError(f"milvus generation {generation} was tokenised with another dictionary: ingest again")
        entries = store.report_list(self.build, generation, self.info)
        known = reuse._written if reuse is not None and reuse.build == self.build else {}
        self._written: dict[tuple[str, str], Report] = {}
        wanted = [(e[0], e[1], e[4]) for e in entries if (e[0], e[1]) not in known]
        heads = store.docs(self.build, [f"r:{rid}:{g}" for rid, g, _ in wanted])
        texts = store.docs(self.build, [f"t:{rid}:{g}:{c:06d}" for rid, g, n in wanted for c in range(n)])
        for rid, g, n in wanted:
            text = "".join(texts[f"t:{rid}:{g}:{c:06d}"] for c in range(n))
            self._written[(rid, g)] = _report_from(json.loads(heads[f"r:{rid}:{g}"]), text)
        self._written.update((k, known[k]) for e in entries if (k := (e[0], e[1])) in known)
        self.reports = [self._written[(e[0], e[1])] for e in entries]
        self.report_by_id = {r.id: r for r in self.reports}
        self._position = {r.id: i for i, r in enumerate(self.reports)}
        self._lo = np.array([e[2] for e in entries], dtype=np.int64)
        self._hi = self._lo + np.array([e[3] for e in entries], dtype=np.int64)
        self.size = int(self.info["rows"])  # rows numbered so far in the build (removed reports' rows included)
        self.doc_count = max(int(self.info["passages"]), 1)
        self._df: dict[str, int] = {}
        self._by_year: dict[int | None, set[str]] = {}
        for r in self.reports:
            self._by_year.setdefault(r.year, set()).add(r.id)

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
        if not order.size:
            return np.full(rows.size, -1, dtype=np.int32)
        found = order[at.clip(0)]
        ok = (at >= 0) & (rows < self._hi[found])
        return np.where(ok, found, -1).astype(np.int32)

    def passage_counts(self) -> np.ndarray:
        return self._hi - self._lo

    def _filter(self, report_ids: list[str] | None) -> str:
        """The rows this generation sees, of these reports: by year when they are all the reports of
        some years (a question naming only a year: one short expression however many reports),
        else by id."""
        if report_ids is None:
            return self.visible
        wanted = set(report_ids)
        years = {self.report_by_id[r].year for r in wanted if r in self.report_by_id}
        if wanted == {r for y in years for r in self._by_year[y]}:
            return _and(self.visible, _filter_in("year", sorted(-1 if y is None else y for y in years)))
        return _and(self.visible, _filter_in("report", report_ids))

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
            body = self.store.docs(self.build, ["d:" + term(token)]).get("d:" + term(token))
            df = df_at(json.loads(body), self.number) if body is not None else 0
            if len(self._df) < DF_CACHE:
                self._df[token] = df
        return df

    def idf(self, token: str) -> float:
        df = self.df(token)
        return float(math.log(1 + (self.doc_count - df + 0.5) / (df + 0.5)))

    def log(self) -> list[tuple[float, str, str, str]]:
        return read_log(self.store, self.build, int(self.info.get("log", 0)))


def read_log(store: MilvusStore, build: str, count: int) -> list[tuple[float, str, str, str]]:
    """The first `count` lines of a build's ingest log (a generation's log is the lines before its count)."""
    keys = [f"l:{i:08d}" for i in range(count)]
    found = store.docs(build, keys)
    return [tuple(json.loads(found[k])) for k in keys]


class MilvusWriter:
    """The IndexWriter (backend.py) of Milvus. A new build when there is none or on `rebuild`; else
    the next generation of the served build, written in place: the added reports' rows inserted,
    the removed and replaced reports' rows marked (their gen_to upserted), the document frequencies
    of the tokens of those rows brought up to date, the new generation's docs written (the added
    reports, the new log lines, its report list and info) and published by one upsert, so that an
    ingest costs what it changes. Checkpoints (for crash tests): inserted, marked, counted, written,
    published. Ingests are not serialised across machines: run them from one place."""

    backend = BACKEND

    def __init__(self, store: MilvusStore, embedder, settings: IndexSettings, keep_generations: int = 3,
                 rebuild: bool = False):
        self.store, self.embedder, self.settings = store, embedder, settings
        self.keep, self.rebuild = keep_generations, rebuild
        self.base: str | None = None
        self.build: str | None = None
        self.info: dict = {}
        self.entries: list[list] = []
        self._live: dict[str, Report] = {}
        self._counts: dict[str, int] = {}
        self._gone: set[str] = set()
        self._added: dict[str, Report] = {}
        self._fresh: list[Passage] = []
        self.floor = 0  # the oldest generation of the build still kept: older document-frequency entries are merged

    @contextlib.contextmanager
    def session(self, wait: bool = True):
        """What an interrupted ingest left cleared (`cleanup`), and the served generation's reports read."""
        store = self.store
        self.cleanup(self.keep)
        self.base = store.current()
        if self.base is not None and not self.rebuild:
            self.build = store.build_of(self.base)
            published = store.published(self.build)
            self.info = published[self.base]
            self.floor = number(min(published))
            self.entries = store.report_list(self.build, self.base, self.info)
            self._counts = {e[0]: int(e[3]) for e in self.entries}
            heads = store.docs(self.build, [f"r:{e[0]}:{e[1]}" for e in self.entries])
            self._live = {e[0]: _report_from(json.loads(heads[f"r:{e[0]}:{e[1]}"]), "") for e in self.entries}
        yield self

    def live(self) -> dict[str, Report]:
        return dict(self._live)

    def passages_of(self, report_id: str) -> int:
        return self._counts.get(report_id, 0)

    def log(self) -> list[tuple[float, str, str, str]]:
        return read_log(self.store, self.build, int(self.info["log"])) if self.info else []

    def delete(self, report_ids: Iterable[str]) -> None:
        self._gone.update(report_ids)

    def add(self, reports: list[Report], passages: list[Passage]) -> None:
        self._added.update((r.id, r) for r in reports)
        self._fresh += passages

    def cleanup(self, keep: int) -> list[str]:
        return self.store.cleanup(keep)

    def _known_vectors(self, report_ids: list[str]) -> dict[str, np.ndarray]:
        """Vectors of the served rows of these reports (the same text, new metadata), by content key."""
        from .ingest import _vec_key

        out = {}
        for rid in report_ids:
            text = self._added[rid].text
            for r in self.store.call("query", self.store.passages_name(self.build), limit=MAX_LIMIT,
                                     filter=_and(visible(self.base), _filter_in("report", [rid])),
                                     output_fields=["start", "end", "vector"]):
                out[_vec_key(self.embedder.name, text[r["start"] : r["end"]])] = np.asarray(r["vector"], dtype=np.float32)
        return out

    def publish(self, log: list[tuple[float, str, str, str]], result, embed_progress: Callable | None = None) -> str:
        from .ingest import _order, _vec_key, _vectors, embed_text

        store, embedder = self.store, self.embedder
        fresh_build = self.build is None
        n = max([number(b) for b in store.builds()] + [number(self.base) if self.base else 0]) + 1
        generation = name(n)
        build = self.build = generation if fresh_build else self.build
        passages = _order(self._fresh, self._added)
        keys = [_vec_key(embedder.name, embed_text(p)) for p in passages]
        same = [rid for rid in self._added if rid in self._live]
        vectors = _vectors(keys, [embed_text(p) for p in passages], self._known_vectors(same) if same else {}, embedder,
                           result, embed_progress)
        if fresh_build:
            store.create(build, embedder.dim, len(passages), self.settings)
        collection = store.passages_name(build)
        entries = {e[0]: e for e in self.entries if e[0] not in self._gone}
        delta: Counter[str] = Counter()
        tokenizer = get_tokenizer()
        row = int(self.info.get("rows", 0)) if not fresh_build else 0
        batch: list[dict] = []
        for p, vec in zip(passages, vectors, strict=True):
            report = self._added[p.report_id]
            if p.report_id not in entries:
                entries[p.report_id] = [p.report_id, generation, row, 0, 0]
            entries[p.report_id][3] += 1
            text = index_header(report, p.section) + "\n" + p.text
            hashed = [term(t) for t in tokenizer.index_words(text) + tokenizer.ngrams(text)]
            delta.update(set(hashed))
            facts = [{k: v for k, v in asdict(f).items() if k not in ("report_id", "row")} for f in passage_facts(p, row)]
            record = {"row": row, "report": report.id, "unit": report.org[:UNIT_CHARS], "year": report.year or -1,
                      "gen_from": n, "gen_to": FOREVER, "pid": p.id, "section": p.section, "start": p.start, "end": p.end,
                      "facts": json.dumps(facts, ensure_ascii=False), "terms": " ".join(hashed),
                      "vector": vec.astype(np.float32).tolist()}
            for field in ("terms", "facts", "section"):
                if len(record[field].encode("utf-8")) > VARCHAR_MAX:
                    raise ValueError(f"passage {p.id} of {report.source}: its {field} exceed Milvus's {VARCHAR_MAX} "
                                     "bytes; chunk the report finer")
            batch.append(record)
            row += 1
            if len(batch) >= INSERT_BATCH:
                store.call("insert", collection, batch)
                batch = []
        if batch:
            store.call("insert", collection, batch)
        checkpoint("inserted")

        gone = sorted(self._gone & set(self._live)) if not fresh_build else []
        for i in range(0, len(gone), KEYS_PER_QUERY):
            where = _and(visible(self.base), _filter_in("report", gone[i : i + KEYS_PER_QUERY]))
            while rows := store.call("query", collection, filter=_and(where, f"gen_to == {FOREVER}"),
                                     output_fields=["row", "terms"], limit=LEFTOVER_BATCH):
                for r in rows:
                    delta.subtract(set(r["terms"].split()))
                store.call("upsert", collection, [{"row": r["row"], "gen_to": n} for r in rows], partial_update=True)
        checkpoint("marked")

        self._count(build, delta, n)
        checkpoint("counted")

        for rid in [e[0] for e in entries.values() if e[1] == generation]:
            report = self._added[rid]
            chunks = [report.text[i : i + TEXT_CHUNK] for i in range(0, len(report.text), TEXT_CHUNK)] or [""]
            entries[rid][4] = len(chunks)
            docs = [{"key": f"r:{rid}:{generation}", "body": json.dumps(_report_record(report), ensure_ascii=False)}]
            store.put_docs(build, docs + [{"key": f"t:{rid}:{generation}:{c:06d}", "body": t} for c, t in enumerate(chunks)])
        logged = int(self.info.get("log", 0)) if not fresh_build else 0
        store.put_docs(build, [{"key": f"l:{i:08d}", "body": json.dumps(e, ensure_ascii=False)}
                               for i, e in enumerate(log) if i >= logged])
        reports = self._live | self._added
        listed = sorted(entries.values(), key=lambda e: (reports[e[0]].source, e[0]))
        text = json.dumps(listed)
        pieces = [text[i : i + LIST_CHUNK] for i in range(0, len(text), LIST_CHUNK)]
        visible_passages = sum(e[3] for e in listed)
        info = {"format": FORMAT, "created": time.time(), "embedder": embedder.name, "dim": embedder.dim,
                "dictionary": dictionary_hash(), "parent": None if fresh_build else self.base, "reports": len(listed),
                "pieces": len(pieces), "rows": row, "passages": visible_passages, "log": len(log)}
        store.put_docs(build, [{"key": f"m:{generation}:{i:04d}", "body": p} for i, p in enumerate(pieces)]
                       + [{"key": "i:" + generation, "body": json.dumps(info)}])
        # a new build is flushed once, so that its passages are one segment, whose BM25 statistics are
        # the whole collection's (Milvus Lite keeps them per segment; Milvus keeps them collection-wide)
        store.call("flush", collection)
        store.call("flush", store.docs_name(build))
        if fresh_build:
            store.call("load_collection", collection)
            store.call("load_collection", store.docs_name(build))
        found = store.call("query", collection, filter=visible(generation), output_fields=["count(*)"])[0]["count(*)"]
        if found != visible_passages:
            raise IndexMismatchError(f"milvus generation {generation}: {found} passages stored, {visible_passages} written")
        checkpoint("written")
        store.publish(build, generation)
        checkpoint("published")
        self.cleanup(self.keep)
        return generation

    def _count(self, build: str, delta: Counter, n: int) -> None:
        """Append generation n's document frequency to the history of each token whose count changed
        (entries of generations no longer kept merged into one)."""
        touched = sorted(t for t, d in delta.items() if d)
        for i in range(0, len(touched), KEYS_PER_QUERY):
            chunk = touched[i : i + KEYS_PER_QUERY]
            found = self.store.docs(build, ["d:" + t for t in chunk])
            rows = []
            for t in chunk:
                history = [h for h in json.loads(found.get("d:" + t, "[]")) if h[0] < n]
                old = [h for h in history if h[0] <= self.floor]
                history = old[-1:] + [h for h in history if h[0] > self.floor]
                rows.append({"key": "d:" + t, "body": json.dumps(history + [[n, df_at(history, n) + delta[t]]])})
            self.store.put_docs(build, rows)


def ingest_milvus(store: MilvusStore, paths: Iterable, embedder, *, keep_generations: int = 3,
                  settings: IndexSettings | None = None, rebuild: bool = False, downloads_in: str | Path = ".",
                  **options):
    """`ingest` (ingest.py) into Milvus: the same reading, classifying, chunking and embedding, written
    by a MilvusWriter as the next generation of the served build (or a new build, first or on
    `rebuild`) and published in one step. Until then servers answer from the old generation; an
    ingest that fails or is killed leaves it served, and the next ingest clears what it left. Reports
    fetched by URL are downloaded into `downloads_in` (ingest.py's DOWNLOADS folder there)."""
    from .ingest import ingest

    settings = settings or IndexSettings()
    writer = MilvusWriter(store, embedder, settings, keep_generations, rebuild)
    return ingest(downloads_in, paths, embedder, settings=settings, keep_generations=keep_generations, rebuild=rebuild,
                  writer=writer, **options)
