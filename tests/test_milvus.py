"""The Milvus backend against a real Milvus-compatible server: `milvus-lite server` (the pinned
milvus-lite, test extra) started on a free loopback port with a temporary data directory, through
the same pymilvus client production uses. One contract suite runs against both backends; then BM25
parity with the embedded index, two `govqa serve` replicas with no local index, an ingest reaching
them under load, Milvus stopped and started under a running server, and a killed ingest."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import HEADLINE, NEW_QUESTION, NEW_REPORT, REPO, REPORTS, ServerThread, needs_shared, wait_for

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytestmark = needs_shared()
GOVQA = [sys.executable, "-m", "bot.cli"]
PREFIX = "govqa_test"  # the five reports; tests that change what is served use prefixes of their own


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MilvusLite:
    """`milvus-lite server` on 127.0.0.1, a port of its own and a data directory that outlives a
    stop, so that it can be stopped and started again as a real server would be."""

    def __init__(self, data_dir: Path):
        self.data_dir, self.port = data_dir, _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.data_dir.parent / "milvus-lite.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(self.data_dir),
                                      "--host", "127.0.0.1", "--port", str(self.port)], stdout=log, stderr=log)
        wait_for(self._answers, 60, "milvus-lite to answer", interval=0.2)

    def _answers(self) -> bool:
        from pymilvus import MilvusClient

        assert self.proc.poll() is None, (self.data_dir.parent / "milvus-lite.log").read_text(errors="replace")[-2000:]
        try:
            client = MilvusClient(uri=self.uri, timeout=2)
            client.list_collections()
            client.close()
            return True
        except Exception:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def milvus(tmp_path_factory):
    server = MilvusLite(tmp_path_factory.mktemp("milvus") / "data")
    server.start()
    yield server
    server.stop()


def _config(config: dict, uri: str, prefix: str) -> dict:
    return {**config, "search": {**config["search"], "backend": "milvus"},
            "milvus": {**config["milvus"], "uri": uri, "prefix": prefix, "timeout_seconds": 5.0}}


@pytest.fixture(scope="module")
def milvus_config(config, milvus, use_embedder):
    """The five reports ingested into Milvus through the backend's own ingest."""
    from bot.service import run_ingest

    cfg = _config(config, milvus.uri, PREFIX)
    result = run_ingest(cfg, [REPORTS], use_embedder)
    assert not result.failed and result.generation == "g000001", result
    return cfg


@pytest.fixture(scope="module")
def backends(milvus_config, real_index, config, use_embedder):
    from bot.service import Source

    embedded = Source(config, real_index)
    milvus = Source(milvus_config)
    return {"embedded": embedded.open(embedded.current(), use_embedder, config),
            "milvus": milvus.open(milvus.current(), use_embedder, milvus_config)}


@pytest.fixture(params=["embedded", "milvus"])
def backend(request, backends):
    return backends[request.param]


def _tokens(text: str) -> list[str]:
    from retriever.tokenize import get_tokenizer

    return get_tokenizer().tokens(text)


# -- the contract, run against both backends ----------------------------------------------------

def test_rows_are_reports_in_order_each_a_range(backend):
    from retriever.backend import SearchBackend

    assert isinstance(backend, SearchBackend)
    counts = backend.passage_counts()
    assert len(backend.reports) == 5 and int(counts.sum()) == backend.size
    assert [r.source for r in backend.reports] == sorted(r.source for r in backend.reports)
    start = 0
    for n, report in enumerate(backend.reports):
        rows = backend.rows_of([report.id])
        assert rows.tolist() == list(range(start, start + int(counts[n])))
        assert (backend.report_at(rows) == n).all()
        start += int(counts[n])
    assert backend.rows_of(["no-such-report"]).size == 0


def test_passages_and_facts_of_rows(backend):
    rows = [0, 7, backend.size - 1]
    passages = backend.passages(rows)
    for row, p in zip(rows, passages, strict=True):
        report = backend.reports[int(backend.report_at(np.array([row]))[0])]
        assert p.report_id == report.id and p.text == report.text[p.start : p.end] and p.org == report.org
    facts = backend.facts(np.arange(backend.size))
    assert facts and all(report_text(backend, f) == f.text for f in facts[:50])
    assert sorted((f.row, f.start) for f in facts) == [(f.row, f.start) for f in facts]


def report_text(backend, fact) -> str:
    return backend.report_by_id[fact.report_id].text[fact.start : fact.end]


def test_lexical_top_is_positive_best_first_and_honours_the_report_filter(backend):
    tokens = _tokens("法律意见书")
    top = backend.lexical_top(tokens, 10)
    scores = backend.lexical_scores(tokens, np.sort(top))
    by_row = dict(zip(np.sort(top).tolist(), scores.tolist(), strict=True))
    ordered = [by_row[int(r)] for r in top]
    assert len(top) == 10 and all(s > 0 for s in ordered) and ordered == sorted(ordered, reverse=True)
    one = backend.reports[2].id
    within = backend.lexical_top(tokens, 10, [one])
    assert within.size and set(within.tolist()) <= set(backend.rows_of([one]).tolist())
    assert backend.lexical_top(_tokens("zzzz"), 10).size == 0


def test_dense_top_and_vectors(backend, use_embedder):
    vector = use_embedder.embed_query(HEADLINE).astype(np.float32)
    top = backend.dense_top(vector, 10)
    scores = backend.vectors_at(top) @ vector
    assert len(top) == 10 and np.all(np.diff(scores) <= 1e-6)
    one = backend.reports[0].id
    assert set(backend.dense_top(vector, 5, [one]).tolist()) <= set(backend.rows_of([one]).tolist())


def test_document_frequencies_and_log(backend):
    assert backend.df("法律") > 0 and backend.df("no-such-token") == 0
    assert backend.idf("no-such-token") > backend.idf("法律") > 0
    assert {status for _, _, status, _ in backend.log()} == {"added"}


def test_the_headline_answer(backend, use_embedder):
    from retriever.search import HybridSearcher

    hits = HybridSearcher(backend, use_embedder).search(HEADLINE, k=3).hits
    assert any("79件" in h.passage.text for h in hits)


# -- the writer contract, run against both backends -------------------------------------------

@pytest.fixture(params=["embedded", "milvus"])
def writer_kind(request, milvus):
    """A writer into an empty index of the backend, and how to open one of its generations."""
    from retriever.backend import EmbeddedBackend
    from retriever.index import Index, IndexSettings
    from retriever.ingest import EmbeddedWriter
    from retriever.milvus import MilvusBackend, MilvusStore, MilvusWriter

    def make(tmp_path, embedder):
        if request.param == "embedded":
            return (lambda: EmbeddedWriter(tmp_path / "index", embedder, IndexSettings()),
                    lambda g: EmbeddedBackend(Index(tmp_path / "index" / "generations" / g, embedder.name, embedder.dim)))
        store = MilvusStore(milvus.uri, prefix=f"govqa_writer_{tmp_path.name[-12:].replace('-', '_')}")
        return (lambda: MilvusWriter(store, embedder, IndexSettings()),
                lambda g: MilvusBackend(store, g, embedder.name, embedder.dim))
    return make


def test_a_writer_adds_deletes_publishes_and_cleans_up(writer_kind, use_embedder, tmp_path):
    from retriever.backend import IndexWriter
    from retriever.chunking import chunk_report
    from retriever.ingest import IngestResult, parse_report

    new_writer, open_generation = writer_kind(tmp_path, use_embedder)
    reports = [parse_report(f) for f in sorted(REPORTS.iterdir())[:2]]
    writer = new_writer()
    assert isinstance(writer, IndexWriter)
    with writer.session():
        assert writer.base is None and writer.live() == {} and writer.log() == []
        writer.add(reports, [p for r in reports for p in chunk_report(r)])
        first = writer.publish([(1.0, "a", "added", "")], IngestResult())
    one = open_generation(first)
    assert sorted(one.report_by_id) == sorted(r.id for r in reports) and one.log() == [(1.0, "a", "added", "")]
    writer = new_writer()
    with writer.session():
        assert writer.base == first and sorted(writer.live()) == sorted(r.id for r in reports)
        assert writer.passages_of(reports[0].id) == len(one.rows_of([reports[0].id])) > 0
        writer.delete([reports[0].id])
        second = writer.publish(writer.log() + [(2.0, "a", "removed", "")], IngestResult())
    two = open_generation(second)
    assert second > first and list(two.report_by_id) == [reports[1].id] and len(two.log()) == 2
    assert len(one.rows_of([reports[0].id])) and one.passages(one.rows_of([reports[0].id]).tolist())  # still read
    writer = new_writer()
    with writer.session():
        assert writer.base == second
    assert first not in writer.cleanup(1)  # a reader holds it (embedded); the served one replaced it (milvus)


# -- parity ---------------------------------------------------------------------------------------

def test_bm25_parity_with_the_embedded_index(backends, dev_questions):
    """Same top 10 by BM25 on every dev question, and the same scores up to one factor: Milvus's
    BM25 has Robertson's (k1 + 1) in the numerator, bm25s's Lucene variant does not, so each score
    is 1 + k1 = 1.9 times the embedded one (measured: every ratio 1.9 within 1e-6). A constant
    factor changes no ranking and no fused score (both are min-max normalised)."""
    from retriever.tokenize import BM25_K1

    embedded, milvus = backends["embedded"], backends["milvus"]
    ratios = []
    for q in dev_questions:
        tokens = _tokens(q["question"])
        a, b = embedded.lexical_top(tokens, 10), milvus.lexical_top(tokens, 10)
        assert a.tolist() == b.tolist(), q["question"]
        rows = np.sort(a)
        ratios += (milvus.lexical_scores(tokens, rows) / embedded.lexical_scores(tokens, rows)).tolist()
    assert len(ratios) == 10 * len(dev_questions)
    assert max(abs(r - (1 + BM25_K1)) for r in ratios) < 1e-5


def test_the_same_fused_results_and_answers(backends, milvus_config, config, real_index, use_embedder, dev_questions):
    from bot.service import open_service

    embedded = open_service(config, real_index, embedder=use_embedder)
    milvus = open_service(milvus_config, embedder=use_embedder)
    for q in dev_questions:
        a = [(h.passage.id, h.score) for h in embedded.searcher.search(q["question"], k=10).hits]
        b = [(h.passage.id, h.score) for h in milvus.searcher.search(q["question"], k=10).hits]
        assert [p for p, _ in a] == [p for p, _ in b], q["question"]
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-5)
        assert embedded.composer.answer(q["question"]).text == milvus.composer.answer(q["question"]).text


# -- replicas, ingest, faults -------------------------------------------------------------------

def _env(cfg: dict, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVQA_")}
    return env | {"PYTHONPATH": str(REPO), "GOVQA_SEARCH__BACKEND": "milvus", "GOVQA_MILVUS__URI": cfg["milvus"]["uri"],
                  "GOVQA_MILVUS__PREFIX": cfg["milvus"]["prefix"], "GOVQA_MILVUS__TIMEOUT_SECONDS": "2",
                  "GOVQA_API__RATE_PER_SECOND": "0", "GOVQA_API__RELOAD_SECONDS": "0.5"} | extra


class Replica:
    """`govqa serve` with the Milvus backend, in an empty directory: no index on its disk."""

    def __init__(self, cfg: dict, home: Path):
        home.mkdir()
        self.home, self.port = home, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(GOVQA + ["serve", "--config", str(REPO / "config.toml"), "--index", str(home / "none"),
                                              "--port", str(self.port)], env=_env(cfg), cwd=home,
                                     stdout=subprocess.DEVNULL, stderr=(home / "server.log").open("wb"))

    def status(self) -> int:
        try:
            return httpx.get(self.url + "/readyz", timeout=5).status_code
        except httpx.TransportError:
            assert self.proc.poll() is None, (self.home / "server.log").read_text(errors="replace")[-3000:]
            return 0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def test_two_replicas_answer_from_milvus_and_follow_an_ingest_under_load(milvus, config, use_embedder, tmp_path):
    """Two servers with no local index answer the headline question with its citation; a report
    ingested through the Milvus backend reaches both without a restart while clients keep asking."""
    from bot.service import run_ingest

    cfg = _config(config, milvus.uri, "govqa_replicas")
    assert run_ingest(cfg, [REPORTS], use_embedder).generation == "g000001"
    replicas = [Replica(cfg, tmp_path / f"replica{i}") for i in range(2)]
    stop, seen = threading.Event(), []

    def hammer(url):
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                r = client.post("/v1/answer", json={"question": HEADLINE})
                body = r.json()
                seen.append((r.status_code, r.status_code == 200 and "79件" in body["answer"], body.get("generation")))

    try:
        for replica in replicas:
            wait_for(lambda r=replica: r.status() == 200, 90, "a replica to be ready", interval=0.2)
            answer = httpx.post(replica.url + "/v1/answer", json={"question": HEADLINE}, timeout=30).json()
            assert "79件" in answer["answer"] and answer["generation"] == "g000001"
            assert any("79件" in c["excerpt"] for c in answer["citations"]), answer["citations"]
        assert not any((r.home / "none").exists() for r in replicas)
        clients = [threading.Thread(target=hammer, args=(r.url,)) for r in replicas for _ in range(2)]
        for c in clients:
            c.start()
        wait_for(lambda: len(seen) > 10, 60, "the clients to get going")
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / "青石县2024年报告.txt").write_text(NEW_REPORT, encoding="utf-8")
        result = run_ingest(cfg, [REPORTS, inbox], use_embedder)
        assert result.generation == "g000002" and [f.status for f in result.files].count("added") == 1

        def answered(replica):
            r = httpx.post(replica.url + "/v1/answer", json={"question": NEW_QUESTION}, timeout=30).json()
            return r.get("found") and "146件" in r["answer"] and r["generation"] == "g000002"

        for replica in replicas:
            wait_for(lambda r=replica: answered(r), 60, "the new report to reach a replica", interval=0.2)
        stop.set()
        for c in clients:
            c.join(timeout=30)
        assert seen and all(status == 200 and ok for status, ok, _ in seen), [s for s in seen if s[0] != 200 or not s[1]][:5]
        assert {g for *_, g in seen} == {"g000001", "g000002"}, "the clients saw the switch"
    finally:
        stop.set()
        for replica in replicas:
            replica.stop()


def test_milvus_stopped_and_started_under_a_running_server(milvus, milvus_config, tmp_path):
    """Milvus going away: /readyz and answers 503, naming the backend; back: answers again, with no
    restart of the server."""
    replica = Replica(milvus_config, tmp_path / "replica")
    try:
        wait_for(lambda: replica.status() == 200, 90, "the replica to be ready", interval=0.2)
        milvus.stop()
        wait_for(lambda: replica.status() == 503, 60, "/readyz to say 503", interval=0.2)
        r = httpx.post(replica.url + "/v1/answer", json={"question": HEADLINE}, timeout=30)
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
        assert "milvus" in r.json()["detail"] + r.json()["title"]
        milvus.start()
        wait_for(lambda: replica.status() == 200, 60, "/readyz to recover", interval=0.2)
        answer = httpx.post(replica.url + "/v1/answer", json={"question": HEADLINE}, timeout=30).json()
        assert "79件" in answer["answer"]
        assert replica.proc.poll() is None
    finally:
        replica.stop()


def _copy_reports(folder: Path) -> Path:
    folder.mkdir()
    for f in sorted(REPORTS.iterdir()):
        if f.is_file():
            (folder / f.name).write_bytes(f.read_bytes())
    return folder


def _leftovers(store, generation: str) -> int:
    """Rows the served generation's build holds beyond what it published: rows of a later
    generation, or marks a later one made."""
    from retriever.milvus import FOREVER, number

    n = number(generation)
    where = f"gen_from > {n} or (gen_to > {n} and gen_to < {FOREVER})"
    return len(store.call("query", store.passages_name(store.build_of(generation)), filter=where, output_fields=["row"],
                          limit=16_384))


@pytest.mark.parametrize("stage", ["inserted", "marked", "counted", "written"])
def test_a_killed_ingest_leaves_the_served_generation_and_the_next_one_cleans_up(milvus, config, use_embedder, tmp_path,
                                                                                 stage):
    """An ingest adding a report and replacing another (its file changed), killed after each of its
    writes: the served generation still answers as before, from exactly its rows; the next ingest
    undoes what the killed one left, and its document frequencies are a fresh build's."""
    from bot.service import milvus_store, open_service, run_ingest
    from retriever.index import FAULT_ENV
    from retriever.ingest import ingest

    cfg = _config(config, milvus.uri, f"govqa_killed_{stage}")
    store = milvus_store(cfg)
    folder = _copy_reports(tmp_path / "reports")
    assert run_ingest(cfg, [folder], use_embedder).generation == "g000001"
    before = open_service(cfg, embedder=use_embedder)
    changed = sorted(folder.iterdir())[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n附：本报告另行补充说明一份。", encoding="utf-8")
    (folder / "青石县2024年报告.txt").write_text(NEW_REPORT, encoding="utf-8")
    marker = tmp_path / f"{stage}.marker"
    proc = subprocess.Popen(GOVQA + ["ingest", "--config", str(REPO / "config.toml"), str(folder)], cwd=tmp_path,
                            env=_env(cfg, **{FAULT_ENV: f"{stage}:{marker}"}), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(marker.exists, 120, f"the ingest to reach {stage}", interval=0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert store.current() == "g000001" and _leftovers(store, "g000001") > 0
    served = open_service(cfg, embedder=use_embedder)
    assert served.generation == "g000001" and served.index.size == before.index.size
    assert "79件" in served.composer.answer(HEADLINE).text
    assert not served.composer.answer(NEW_QUESTION).found
    for q in (HEADLINE, NEW_QUESTION, "法律意见书"):
        assert [h.passage.id for h in served.searcher.search(q, k=10).hits] == \
            [h.passage.id for h in before.searcher.search(q, k=10).hits]

    result = run_ingest(cfg, [folder], use_embedder)
    assert result.generation == "g000002" and store.current() == "g000002" and _leftovers(store, "g000002") == 0
    assert sorted(f.status for f in result.files) == ["added", "unchanged", "unchanged", "unchanged", "unchanged", "updated"]
    after = open_service(cfg, embedder=use_embedder)
    assert "146件" in after.composer.answer(NEW_QUESTION).text
    visible = store.call("query", store.passages_name("g000001"), filter="gen_from <= 2 and gen_to > 2",
                         output_fields=["count(*)"])[0]["count(*)"]
    assert visible == int(after.index.passage_counts().sum()) == result.passages
    fresh = tmp_path / "fresh"
    ingest(fresh, [folder], use_embedder)
    from .conftest import load_index

    truth = load_index(fresh, use_embedder)
    for token in _tokens(NEW_QUESTION + changed.read_text(encoding="utf-8")[:200] + "附本报告另行补充说明"):
        assert after.index.df(token) == truth.df(token), token


def test_a_killed_rebuild_leaves_the_served_build_and_the_next_ingest_drops_its_collections(milvus, config,
                                                                                             use_embedder, tmp_path):
    from bot.service import milvus_store, open_service, run_ingest
    from retriever.index import FAULT_ENV

    cfg = _config(config, milvus.uri, "govqa_killed_rebuild")
    store = milvus_store(cfg)
    assert run_ingest(cfg, [REPORTS], use_embedder).generation == "g000001"
    marker = tmp_path / "written.marker"
    proc = subprocess.Popen(GOVQA + ["ingest", "--rebuild", "--config", str(REPO / "config.toml"), str(REPORTS)],
                            cwd=tmp_path, env=_env(cfg, **{FAULT_ENV: f"written:{marker}"}), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(marker.exists, 120, "the rebuild to be written", interval=0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert store.current() == "g000001" and store.builds() == ["g000001", "g000002"]
    assert "79件" in open_service(cfg, embedder=use_embedder).composer.answer(HEADLINE).text
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "青石县2024年报告.txt").write_text(NEW_REPORT, encoding="utf-8")
    assert run_ingest(cfg, [inbox], use_embedder).generation == "g000002" and store.builds() == ["g000001"]


def test_a_small_ingest_writes_only_the_new_reports_rows_and_one_that_changes_nothing_writes_nothing(
        milvus, config, use_embedder, tmp_path):
    from bot.service import index_settings, milvus_store
    from retriever.milvus import MilvusBackend, ingest_milvus

    cfg = _config(config, milvus.uri, "govqa_small")
    store = milvus_store(cfg)
    settings = index_settings(cfg)
    ingest_milvus(store, [REPORTS], use_embedder, settings=settings)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "青石县2024年报告.txt").write_text(NEW_REPORT, encoding="utf-8")
    store.calls.clear()
    result = ingest_milvus(store, [REPORTS, inbox], use_embedder, settings=settings)
    new = next(f for f in result.files if f.status == "added")
    assert result.embedded == new.passages > 0
    assert store.calls["insert:passages"] == new.passages and store.calls["upsert:passages"] == 0
    assert store.calls["insert:docs"] == 0  # docs are upserted: the new report, its log line, counts, list, info
    backend = MilvusBackend(store, result.generation, use_embedder.name, use_embedder.dim, settings)
    assert backend.size == result.passages and new.report_id in backend.report_by_id
    store.calls.clear()
    again = ingest_milvus(store, [REPORTS, inbox], use_embedder, settings=settings)
    assert again.generation == result.generation and not store.calls, store.calls


def test_a_deleted_report_leaves_the_next_generation_but_not_a_request_on_the_old_one(milvus, config, use_embedder,
                                                                                    tmp_path):
    from bot.service import milvus_store, open_service, run_ingest

    cfg = _config(config, milvus.uri, "govqa_delete")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "青石县2024年报告.txt").write_text(NEW_REPORT, encoding="utf-8")
    added = run_ingest(cfg, [REPORTS, inbox], use_embedder)
    new_id = next(f.report_id for f in added.files if "青石县" in f.path)
    old = open_service(cfg, embedder=use_embedder)  # a request holding g000001
    removed = run_ingest(cfg, [], use_embedder, remove=[new_id])
    assert removed.generation == "g000002" and [f.status for f in removed.files] == ["removed"]
    new = open_service(cfg, embedder=use_embedder)
    assert new_id not in new.index.report_by_id and not new.composer.answer(NEW_QUESTION).found
    assert "146件" in old.composer.answer(NEW_QUESTION).text  # its rows are marked, not gone
    assert milvus_store(cfg).current() == "g000002"


def test_replaced_generations_are_dropped_after_their_grace_period(milvus, config, use_embedder, tmp_path):
    """Generations replaced moments ago are kept; past the grace period, beyond `keep`, their docs go
    and so do the rows no kept generation sees. A --rebuild writes a new build; the old one goes
    when none of its generations is kept."""
    from bot.service import milvus_store, run_ingest

    cfg = _config(config, milvus.uri, "govqa_grace")
    store = milvus_store(cfg)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "青石县2024年报告.txt").write_text(NEW_REPORT, encoding="utf-8")
    run_ingest(cfg, [REPORTS], use_embedder, keep_generations=1)
    added = run_ingest(cfg, [REPORTS, inbox], use_embedder, keep_generations=1)
    new_id = next(f.report_id for f in added.files if f.status == "added")
    assert run_ingest(cfg, [], use_embedder, keep_generations=1, remove=[new_id]).generation == "g000003"
    assert list(store.published("g000001")) == ["g000001", "g000002", "g000003"]  # replaced moments ago
    assert store.cleanup(1, grace=0) == ["g000001"]  # the one the current one replaced stays
    assert list(store.published("g000001")) == ["g000002", "g000003"]
    run_ingest(cfg, [inbox], use_embedder, keep_generations=1)  # the report again: new rows
    assert store.cleanup(1, grace=0) == ["g000002"]

    def count(where: str, build: str = "g000001") -> int:
        return store.call("query", store.passages_name(build), filter=where, output_fields=["count(*)"])[0]["count(*)"]

    # the rows the report had in g000002 (removed in g000003) are gone; g000003's and g000004's stay
    assert count("gen_to <= 3") == 0 and count("") == count("gen_from <= 4 and gen_to > 4") == added.passages
    rebuilt = run_ingest(cfg, [REPORTS, inbox], use_embedder, keep_generations=1, rebuild=True)
    assert rebuilt.generation == "g000005" and store.builds() == ["g000001", "g000005"]
    assert store.cleanup(1, grace=0) == []  # g000004, in the old build, is the one g000005 replaced
    run_ingest(cfg, [], use_embedder, keep_generations=1, remove=[new_id])
    assert store.cleanup(1, grace=0) == ["g000001", "g000003", "g000004"] and store.builds() == ["g000005"]


def test_the_telegram_bot_says_when_milvus_is_away_and_answers_when_it_is_back(milvus, milvus_config, use_embedder):
    from bot.live import LiveService
    from bot.telegram import build_application

    from .conftest import ServerThread
    from .fake_telegram import TOKEN, FakeTelegram
    from .test_telegram import BOTNAME, GROUP, BotThread, reply_to

    fake = FakeTelegram()
    with ServerThread(fake.app) as server:
        cfg = {**milvus_config, "telegram": {"api_base_url": server.url + "/bot", "allowed_chats": [GROUP["id"]]}}
        live = LiveService(cfg, embedder=use_embedder, poll_seconds=600)  # no poll during the test: a question meets the outage
        live.reload()
        with BotThread(build_application(cfg, live, TOKEN)):
            wait_for(lambda: fake.called("getUpdates"))
            milvus.stop()
            try:
                (away,) = reply_to(fake, fake.message(GROUP, f"/ask@{BOTNAME} {HEADLINE}"), timeout=60)
            finally:
                milvus.start()
            assert "暂时无法访问" in away["text"]
            live.reload()  # a poll finds it back
            (back,) = reply_to(fake, fake.message(GROUP, f"/ask@{BOTNAME} {HEADLINE}"), timeout=60)
            assert "79件" in back["text"].splitlines()[0]


def test_the_api_uploads_into_milvus_and_answers_503_when_a_request_meets_it_away(milvus, config, use_embedder, tmp_path):
    """The API's upload goes to the configured backend; a request that finds Milvus gone before the
    next poll does (here the poll never runs) is a 503 naming it, and /readyz says so until a reload
    finds Milvus back."""
    from bot.api import Keys, create_app
    from bot.live import LiveService
    from bot.service import run_ingest

    cfg = _config(config, milvus.uri, "govqa_api")
    cfg["api"] = {**cfg["api"], "rate_per_second": 0}
    run_ingest(cfg, [REPORTS], use_embedder)
    live = LiveService(cfg, tmp_path / "none", embedder=use_embedder, poll_seconds=3600)
    with ServerThread(create_app(cfg, live, Keys([], ["admin"]))) as s, \
            httpx.Client(base_url=s.url, headers={"X-API-Key": "admin"}, timeout=120) as c:
        up = c.post("/v1/reports", files=[("files", ("青石县2024.txt", NEW_REPORT.encode(), "text/plain"))])
        assert up.status_code == 200 and up.json()["files"][0]["status"] == "added", up.text
        assert "146件" in c.post("/v1/answer", json={"question": NEW_QUESTION}).json()["answer"]
        # nothing of the index on this server's disk: only the uploaded file, as received
        assert [p.parent.name for p in (tmp_path / "none").rglob("*") if p.is_file()] == ["uploads"]
        milvus.stop()
        try:
            r = c.post("/v1/answer", json={"question": HEADLINE})
            assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json", r.text
            assert "milvus" in r.json()["detail"] and r.headers["retry-after"]
            assert c.get("/readyz").status_code == 503
        finally:
            milvus.start()
        assert c.post("/v1/index/reload").status_code == 200
        assert "79件" in c.post("/v1/answer", json={"question": HEADLINE}).json()["answer"]


def test_url_and_scanned_reports_in_milvus_keep_their_url_and_pages(milvus, config, use_embedder, tmp_path):
    """Reports of every format land in Milvus with what citations show: a URL report its URL (its
    file downloaded beside the configured index directory), a scan its pages."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, PlainTextResponse
    from starlette.routing import Route

    from bot.service import Source, open_service, run_ingest

    from .test_formats import scanned_pdf

    text = NEW_REPORT.replace("青石县", "绿水县")
    page = "<html><head><meta charset='utf-8'></head><body>" + "".join(f"<p>{x}</p>" for x in text.split("\n") if x) + "</body></html>"
    routes = [Route("/ready", lambda r: PlainTextResponse("ok")), Route("/r.html", lambda r: HTMLResponse(page))]
    cfg = _config(config, milvus.uri, "govqa_formats")
    with ServerThread(Starlette(routes=routes), ready_path="/ready") as site:
        url = f"{site.url}/r.html"
        result = run_ingest(cfg, [url, scanned_pdf(tmp_path / "scan.pdf")], use_embedder, tmp_path / "local")
        assert [f.status for f in result.files] == ["added", "added"], result.files
        again = run_ingest(cfg, [url], use_embedder, tmp_path / "local")  # fetched again, unchanged
        assert [f.status for f in again.files] == ["unchanged"] and again.generation == result.generation
    assert list((tmp_path / "local" / "downloads").iterdir())
    service = open_service(cfg, embedder=use_embedder, source=Source(cfg))
    a = service.composer.answer(NEW_QUESTION.replace("青石县", "绿水县"))
    assert "146件" in a.text and a.citations[0].source == url == a.citations[0].url
    a = service.composer.answer("青山区司法局2023年出具了多少份法律意见书？")
    assert "95份" in a.text and a.citations[0].page == 2
