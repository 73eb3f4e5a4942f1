"""How govqa scales: a synthetic corpus of N passages (bench/corpus.py), and for each N

- ingest throughput, lexical only (vectors replaced by random ones) and, up to --embed-max
  passages, end to end with the default embedder (USE v3);
- search, answer and facts-query latency in process, one query at a time (questions naming a unit and a year,
  as users ask, and the same asks without them, which search the whole corpus);
- hit@5 and answer accuracy on those questions (each is made from one sentence of one report);
- resident memory after loading (a fresh process) and the index size on disk;
- ANN recall@10 of the approximate index (IVF by default) against exact search, and their latencies;
- one new ~30-passage report added (a delta segment), a running server's reload of it, and search
  latency with the two segments;
- the baseline in the same run: rank_bm25 over jieba words plus an exact FAISS flat index, fused
  with equal-weight reciprocal rank fusion, as tutorials build it; our figures as ratios to it;
- with --http N: requests/s over HTTP (uvicorn on loopback, one and two server processes) at that size,
  with a minimal keep-alive client (bench/load.py) and, for comparison, with httpx.

Above --embed-max the index holds random unit vectors instead of USE embeddings (embedding runs
at ~130 passages/s a core): latency and memory are real, dense-side quality (and ANN recall, not
measured there; bench/ann.py measures it on real vectors) is not.

    python bench/scale.py [--passages 10000 100000] [--queries 200] [--http 100000] [--json OUT] [--keep DIR | --reuse DIR]
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.corpus import REPORTS, RandomVectors, write_corpus  # noqa: E402
from bench.ingest_one import time_one  # noqa: E402
from bench.load import load_server  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.service import open_service  # noqa: E402
from embeddings import make_embedder  # noqa: E402
from retriever.index import IndexDir  # noqa: E402
from retriever.ingest import ingest  # noqa: E402
from retriever.store import read_manifest  # noqa: E402
from retriever.tokenize import get_tokenizer  # noqa: E402

_TITLE = re.compile(r"^(.+?)(\d{4})年法治政府建设年度报告")
_FIGURE = re.compile(r"([\u4e00-\u9fff]{4,16})(\d+)(件|次|人|个|项|场|份|名|条|篇|家|宗|期|批|户)([\u4e00-\u9fff]{0,6})")


def make_questions(files: list[Path], n: int, seed: int) -> list[dict]:
    """Questions made from one figure of one report each: "{unit}{year}年{what}多少{measure}{noun}？"."""
    rng = random.Random(seed)
    out = []
    for path in rng.sample(files, min(len(files), n * 2)):
        text = path.read_text(encoding="utf-8")
        title = _TITLE.match(text)
        figures = [m for m in _FIGURE.finditer(text) if "年" not in m.group(1)]
        if not title or not figures:
            continue
        m = rng.choice(figures)
        what = re.split(r"[，。；、：,]", m.group(1))[-1]
        if len(what) < 4 or text.count(what + m.group(2)) != 1 or text.count(what) > 1:
            continue  # the ask must point at one sentence of the report
        unit, year = title.group(1), title.group(2)
        ask = f"{what}多少{m.group(3)}{m.group(4)}？"
        out.append({"question": f"{unit}{year}年{ask}", "bare": ask,
                    "source": path.name, "evidence": what + m.group(2) + m.group(3), "answer": m.group(2) + m.group(3)})
        if len(out) == n:
            break
    return out


def pct(values: list[float]) -> dict:
    ms = np.array(values) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def timed(fn, items):
    times, results = [], []
    for item in items:
        t = time.perf_counter()
        results.append(fn(item))
        times.append(time.perf_counter() - t)
    return times, results


def hit(passages, q) -> bool:
    return any(p.source == q["source"] and q["evidence"] in p.text.replace(" ", "") for p in passages)


def disk_bytes(generation: Path) -> int:
    """A generation's size on disk, with the segments it shares with older generations."""
    segments = read_manifest(generation / "manifest.json")["segments"]
    folders = {generation} | {generation.parent / s["name"] for s in segments}
    return sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())


def resident(root: Path, questions: list[dict]) -> dict:
    """RSS of a fresh process before and after loading the index (embedder already loaded), and
    after answering every question, filtered and unfiltered (memory-mapped parts come in as read)."""
    code = f"""
import json, sys
sys.path.insert(0, {str(REPO)!r})
from bot.config import load_config
from bot.service import open_service
from embeddings import make_embedder
def rss():
    return next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmRSS'))
from retriever.tokenize import get_tokenizer
e = make_embedder('use-multilingual')
e.embed_query('预热')
get_tokenizer().tokens('预热')  # the jieba dictionary is a fixed cost, not the index's
before = rss()
s = open_service(load_config({str(REPO / 'config.toml')!r}, environ={{}}), {str(root)!r}, embedder=e)
s.composer.answer({questions[0]["question"]!r})
after = rss()
for q in {[q["question"] for q in questions] + [q["bare"] for q in questions]!r}:
    s.composer.answer(q)
print(json.dumps({{'before': before, 'after': after, 'warm': rss()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def tie_aware_recall(vectors: np.ndarray, queries: np.ndarray, exact_scores: list, found: list) -> float:
    """Recall@10 of approximate results against exact search. The corpus repeats sentences, so
    passages tie: a result counts when its exact score (not the index's own, which float16 storage
    rounds) reaches the 10th best exact score."""
    got = [vectors[f[f >= 0]] @ q for f, q in zip(found, queries, strict=True)]
    return float(np.mean([np.sum(g >= ex[-1] - 1e-5) / 10 for ex, g in zip(exact_scores, got, strict=True)]))


def ann_recall(vectors: np.ndarray, queries: np.ndarray, config: dict) -> dict:
    """Recall@10 of the approximate index the config builds for large segments, built here on
    these vectors, against exact search, and the latency of both."""
    from bot.service import index_settings
    from retriever.index import configure_search, vector_index

    settings = index_settings(config)
    exact, _ = vector_index(vectors, vectors.shape[1], replace(settings, exact_max=len(vectors)))
    t = time.perf_counter()
    ann, kind = vector_index(vectors, vectors.shape[1], replace(settings, exact_max=1))
    build = time.perf_counter() - t
    configure_search(ann, settings)
    t_exact, truth = timed(lambda q: exact.search(q[None, :], 10)[0][0], queries)
    t_ann, found = timed(lambda q: ann.search(q[None, :], 10)[1][0], queries)
    recall = tie_aware_recall(vectors, queries, truth, found)
    return {"kind": kind, "recall_at_10": round(float(recall), 3), "exact": pct(t_exact), "ann": pct(t_ann),
            "build_s": round(build, 1)}


def index_ann_recall(index, queries: np.ndarray, exact_timed: int = 20) -> dict:
    """Recall@10 of the index's own approximate index against exact search over the same vectors
    (read in blocks from vectors.npy), and the latency of both."""
    seg = index.segments[0]
    t_ann, found = timed(lambda q: seg.ann.search(q[None, :], 10)[1][0], queries)
    best = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    for start in range(0, seg.size, 100_000):
        scores = np.asarray(seg.vectors[start : start + 100_000]) @ queries.T
        best = -np.sort(-np.concatenate([best, scores.T], axis=1), axis=1)[:, :10]
    vectors = seg.vectors

    def exact(q):
        return np.argsort(-(np.asarray(vectors) @ q))[:10]

    t_exact, _ = timed(exact, queries[:exact_timed])
    recall = tie_aware_recall(seg.vectors, queries, list(best), found)
    sweep = []
    if hasattr(seg.ann, "nprobe"):  # IVF: how recall and latency move with the lists a query reads
        configured = seg.ann.nprobe
        for nprobe in (16, 32, 64, 128, 256):
            seg.ann.nprobe = nprobe
            t_probe, got = timed(lambda q: seg.ann.search(q[None, :], 10)[1][0], queries)
            sweep.append({"nprobe": nprobe, "recall_at_10": round(tie_aware_recall(seg.vectors, queries, list(best), got), 3),
                          **pct(t_probe)})
        seg.ann.nprobe = configured
    return {"kind": index.manifest["segments"][0]["faiss"], "recall_at_10": round(float(recall), 3),
            "exact": pct(t_exact), "ann": pct(t_ann), "own_index": True, "sweep": sweep}


def baseline(service, questions: list[dict], embedder, limit: int) -> dict:
    """rank_bm25 (pure Python) + exact FAISS flat + equal-weight RRF over the same passages."""
    import faiss
    import jieba
    from rank_bm25 import BM25Okapi

    index = service.index
    passages = index.all_passages()
    t = time.perf_counter()
    bm25 = BM25Okapi([jieba.lcut(p.text) for p in passages])
    flat = faiss.IndexFlatIP(index.segments[0].vectors.shape[1])
    flat.add(np.ascontiguousarray(index.segments[0].vectors, dtype=np.float32))
    build = time.perf_counter() - t

    def search(q):
        lex = np.argsort(-bm25.get_scores(jieba.lcut(q["question"])))[:100]
        _, dense = flat.search(embedder.embed_query(q["question"])[None, :].astype(np.float32), 100)
        score: dict[int, float] = {}
        for ranking in (lex, dense[0]):
            for rank, row in enumerate(ranking):
                score[int(row)] = score.get(int(row), 0.0) + 1 / (60 + rank + 1)
        top = sorted(score, key=lambda r: -score[r])[:5]
        return [passages[r] for r in top]

    times, results = timed(search, questions[:limit])
    return {"build_s": round(build, 1), "queries": len(times), **pct(times),
            "hit_at_5": round(float(np.mean([hit(r, q) for r, q in zip(results, questions, strict=False)])), 3)}


def run(n: int, args, config: dict, use, work: Path) -> dict:
    row: dict = {"passages_asked": n}
    corpus = work / f"corpus-{n}"
    files = write_corpus(corpus, n, seed=7, reports_dir=REPORTS)
    questions = make_questions(files, args.queries, seed=n)
    row["questions"] = len(questions)

    if args.reuse:  # measure the index a --keep run left (its corpus is written again, the same)
        root = work / f"use-{n}" if (work / f"use-{n}").exists() else work / f"lexical-{n}"
        row["vectors"] = "USE v3" if root.name.startswith("use-") else "random"
    else:
        lexical_root = work / f"lexical-{n}"
        t = time.perf_counter()
        result = ingest(lexical_root, [corpus], RandomVectors(use))
        seconds = time.perf_counter() - t
        row["passages"] = result.passages
        row["ingest_lexical_s"] = round(seconds, 1)
        row["ingest_lexical_per_s"] = round(result.passages / seconds)
        root = lexical_root
        row["vectors"] = "random"
        if n <= args.embed_max:
            root = work / f"use-{n}"
            t = time.perf_counter()
            embedded = ingest(root, [corpus], use).embedded  # passages of the same text share a vector
            row["ingest_end_to_end_per_s"] = round(result.passages / (time.perf_counter() - t))
            row["embedded"] = embedded
            row["vectors"] = "USE v3"
        print(f"  {n}: ingested ({row})", file=sys.stderr)

    service = open_service(config, root, embedder=use)
    searcher, composer = service.searcher, service.composer
    row["passages"], row["segments"] = service.index.size, len(service.index.segments)
    top_k = int(config["answer"]["top_k"])
    composer.answer(questions[0]["question"])  # warm
    t_search, found = timed(lambda q: [h.passage for h in searcher.search(q["question"], k=top_k).hits], questions)
    t_bare, _ = timed(lambda q: searcher.search(q["bare"], k=top_k).hits, questions)
    t_answer, answers = timed(lambda q: composer.answer(q["question"]), questions)
    t_facts, _ = timed(lambda q: composer.facts.find(q["question"]), questions)
    t_facts_bare, _ = timed(lambda q: composer.facts.find(q["bare"]), questions)
    row["facts"] = pct(t_facts)
    row["facts_unfiltered"] = pct(t_facts_bare)
    row["search"] = pct(t_search)
    row["search_unfiltered"] = pct(t_bare)
    row["answer"] = pct(t_answer)
    row["hit_at_5"] = round(float(np.mean([hit(h[:5], q) for h, q in zip(found, questions, strict=True)])), 3)
    row["answer_accuracy"] = round(float(np.mean([a.found and q["answer"] in a.text for a, q in zip(answers, questions, strict=True)])), 3)
    row["disk_mb"] = round(disk_bytes(IndexDir(root).current_path()) / 2**20, 1)
    rss = resident(root, questions)
    row["rss_mb"] = round(rss["after"] / 2**20)
    row["rss_per_passage_bytes"] = round((rss["after"] - rss["before"]) / row["passages"])
    row["rss_warm_per_passage_bytes"] = round((rss["warm"] - rss["before"]) / row["passages"])
    queries = np.stack([use.embed_query(q["bare"]) for q in questions[: args.ann_queries]]).astype(np.float32)
    if service.index.manifest["segments"][0]["faiss"] != "flat":  # the index's own, on whatever vectors it holds
        row["ann"] = index_ann_recall(service.index, queries)
    elif row["vectors"] != "random":  # one built here on the real vectors, to compare
        row["ann"] = ann_recall(np.ascontiguousarray(service.index.segments[0].vectors, dtype=np.float32), queries, config)
    print(f"  {n}: measured in process", file=sys.stderr)
    if args.reuse and row["segments"] > 1:  # the report below was added already
        return row
    # one new report of ~30 passages (a delta segment), then a running server's reload of it
    row["add_one"] = time_one(root, work, use, seed=n)
    t = time.perf_counter()
    reloaded = open_service(config, root, embedder=use, reuse=service.index)
    row["reload_s"] = round(time.perf_counter() - t, 2)
    row["segments_after_add"] = len(reloaded.index.segments)
    t_after, _ = timed(lambda q: reloaded.searcher.search(q["question"], k=top_k).hits, questions)
    row["search_after_add"] = pct(t_after)
    print(f"  {n}: one report added in {row['add_one']['seconds']} s", file=sys.stderr)
    if n <= args.baseline_max:
        row["baseline"] = baseline(service, questions, use, args.baseline_queries)
        row["speedup_search"] = round(row["baseline"]["p50_ms"] / row["search"]["p50_ms"], 1)
        row["speedup_search_unfiltered"] = round(row["baseline"]["p50_ms"] / row["search_unfiltered"]["p50_ms"], 1)
    if n in args.http:
        asks = [q["question"] for q in questions]
        row["http"] = {f"--workers {w}, {client} client": load_server(root, asks, [1, 16, 64], args.requests, 120, w, client)
                       for w, client in ((1, "raw"), (2, "raw"), (2, "httpx"))}
    return row


def print_table(rows: list[dict]) -> None:
    print(f"synthetic corpus (bench/corpus.py, seed 7); {os.cpu_count()} cores; times per query, one at a time")
    cols = [("passages", lambda r: r["passages"]), ("vectors", lambda r: r["vectors"]),
            ("ingest lex/s", lambda r: r["ingest_lexical_per_s"]),
            ("ingest e2e/s", lambda r: r.get("ingest_end_to_end_per_s", "-")),
            ("search p50/p99", lambda r: f"{r['search']['p50_ms']}/{r['search']['p99_ms']}"),
            ("unfiltered p50/p99", lambda r: f"{r['search_unfiltered']['p50_ms']}/{r['search_unfiltered']['p99_ms']}"),
            ("answer p50/p99", lambda r: f"{r['answer']['p50_ms']}/{r['answer']['p99_ms']}"),
            ("facts p50/p99", lambda r: f"{r['facts']['p50_ms']}/{r['facts']['p99_ms']}"),
            ("facts unfiltered p50/p99", lambda r: f"{r['facts_unfiltered']['p50_ms']}/{r['facts_unfiltered']['p99_ms']}"),
            ("hit@5", lambda r: r["hit_at_5"]), ("answer acc", lambda r: r["answer_accuracy"]),
            ("RSS MB", lambda r: r["rss_mb"]), ("B/passage", lambda r: r["rss_per_passage_bytes"]),
            ("B/passage after all questions", lambda r: r["rss_warm_per_passage_bytes"]),
            ("disk MB", lambda r: r["disk_mb"]),
            ("one new report (s)", lambda r: r["add_one"]["seconds"]),
            ("server reload (s)", lambda r: r["reload_s"]),
            ("search p50/p99 after it", lambda r: f"{r['search_after_add']['p50_ms']}/{r['search_after_add']['p99_ms']}"),
            ("ANN recall@10", lambda r: f"{r['ann']['kind']} {r['ann']['recall_at_10']}"),
            ("exact/ANN p50", lambda r: f"{r['ann']['exact']['p50_ms']}/{r['ann']['ann']['p50_ms']}"),
            ("baseline p50/p99", lambda r: f"{r['baseline']['p50_ms']}/{r['baseline']['p99_ms']}"),
            ("baseline hit@5", lambda r: r["baseline"]["hit_at_5"]),
            ("speed-up (filtered, unfiltered)", lambda r: f"{r['speedup_search']}x, {r['speedup_search_unfiltered']}x")]

    def cell(get, r):
        try:
            return get(r)
        except KeyError:  # not measured at this size
            return "-"

    for name, get in cols:
        print(f"{name:<34}" + "".join(f"{cell(get, r)!s:>20}" for r in rows))
    for r in rows:
        if r.get("ann", {}).get("sweep"):
            print(f"\nIVF of {r['passages']} passages ({r['vectors']} vectors), recall@10 and latency by lists read:")
            for p in r["ann"]["sweep"]:
                print(f"  nprobe {p['nprobe']:>4}: recall@10 {p['recall_at_10']:.3f}, p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms")
        for setup, levels in r.get("http", {}).items():
            print(f"\nHTTP POST /v1/answer at {r['passages']} passages, govqa serve {setup}:")
            for h in levels:
                print(f"  concurrency {h['concurrency']:>3}: {h['rps']:>7.1f} req/s, p50 {h['p50_ms']} ms, "
                      f"p99 {h['p99_ms']} ms, {h['errors']} errors, client CPU {h['client_cpu_ms_per_request']} ms a request")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--embed-max", type=int, default=20_000, help="embed with USE up to this size, random vectors above")
    ap.add_argument("--baseline-queries", type=int, default=50)
    ap.add_argument("--baseline-max", type=int, default=200_000, help="run the baseline up to this size")
    ap.add_argument("--ann-queries", type=int, default=200)
    ap.add_argument("--http", type=int, nargs="*", default=[], help="sizes at which to load the HTTP API")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--keep", default=None, help="work in this new directory and leave the corpora and indexes there")
    ap.add_argument("--reuse", default=None,
                    help="measure search, answers, memory and ANN recall on the indexes a --keep run left in this directory")
    args = ap.parse_args()
    if args.keep and Path(args.keep).exists() and any(Path(args.keep).iterdir()):
        ap.error(f"--keep {args.keep}: not empty (an index there would be added to, not built)")
    if args.reuse and not Path(args.reuse).is_dir():
        ap.error(f"--reuse {args.reuse}: no such directory")
    config = load_config(REPO / "config.toml", environ={})
    use = make_embedder("use-multilingual")
    get_tokenizer()  # the jieba dictionary (~1.5 s) is loaded once a process, before any timed ingest
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.reuse or args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for n in args.passages:
            rows.append(run(n, args, config, use, work))
    print_table(rows)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
