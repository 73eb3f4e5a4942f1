"""Which FAISS index past which size: exact (flat) search against HNSW at several efSearch
values and IVF at several nprobe values, on real USE v3 vectors of a synthetic corpus
(bench/corpus.py), queried with questions made from it. Prints recall@10 against exact search,
per-query latency (one at a time) and build time.

    python bench/ann.py [--passages 30000] [--m 32] [--ef-construction 80 200] [--ef 64 96 128 192 256]
                        [--nlist 0] [--nprobe 16 32 64 128] [--vectors FILE] [--json OUT]

--nlist 0 is govqa's default number of IVF lists (2 * sqrt(passages)); an empty --ef-construction
or --nlist leaves HNSW or IVF out.

Embedding is the slow part (~280 passages/s on two cores): --vectors keeps the vectors in FILE
(.npy) and reuses them when it holds as many as the corpus has passages.

The synthetic corpus repeats sentences, so many passages tie: a result counts as found when its
exact score reaches the 10th exact score (tie-aware recall).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.corpus import REPORTS, write_corpus  # noqa: E402
from bench.scale import make_questions, pct, tie_aware_recall, timed  # noqa: E402
from embeddings import make_embedder  # noqa: E402
from retriever.chunking import chunk_report  # noqa: E402
from retriever.index import IndexSettings, vector_index  # noqa: E402
from retriever.ingest import embed_text, parse_report  # noqa: E402


def main() -> None:
    import faiss

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=30_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, nargs="*", default=[80, 200])
    ap.add_argument("--ef", type=int, nargs="+", default=[64, 96, 128, 192, 256])
    ap.add_argument("--nlist", type=int, nargs="*", default=[0])
    ap.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--vectors", default=None)
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    use = make_embedder("use-multilingual")
    with tempfile.TemporaryDirectory() as tmp:
        files = write_corpus(Path(tmp), args.passages, seed=11, reports_dir=REPORTS)
        passages = [p for f in files for p in chunk_report(parse_report(f))]
        questions = make_questions(files, args.queries, seed=3)
    cached = Path(args.vectors) if args.vectors else None
    if cached and cached.exists() and np.load(cached, mmap_mode="r").shape[0] == len(passages):
        vectors = np.load(cached)
    else:
        t = time.perf_counter()
        vectors = np.ascontiguousarray(use.embed_documents([embed_text(p) for p in passages]), dtype=np.float32)
        print(f"embedded {len(passages)} passages in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        if cached:
            np.save(cached, vectors)
    queries = np.stack([use.embed_query(q["bare"]) for q in questions]).astype(np.float32)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    t_exact, truth = timed(lambda q: exact.search(q[None, :], 10)[0][0], queries)
    rows = [{"index": "flat (exact)", "recall_at_10": 1.0, **pct(t_exact)}]
    for efc, storage in [(efc, s) for efc in args.ef_construction for s in ("float32", "float16")]:
        t = time.perf_counter()
        if storage == "float32":
            hnsw = faiss.IndexHNSWFlat(vectors.shape[1], args.m, faiss.METRIC_INNER_PRODUCT)
        else:  # what govqa builds
            hnsw = faiss.IndexHNSWSQ(vectors.shape[1], faiss.ScalarQuantizer.QT_fp16, args.m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = efc
        hnsw.add(vectors)
        build = time.perf_counter() - t
        for ef in args.ef:
            hnsw.hnsw.efSearch = ef
            times, found = timed(lambda q, index=hnsw: index.search(q[None, :], 10)[1][0], queries)
            recall = tie_aware_recall(vectors, queries, truth, found)
            rows.append({"index": f"HNSW {storage} M={args.m} efC={efc} efS={ef}", "recall_at_10": round(float(recall), 3),
                         "build_s": round(build, 1), **pct(times)})
    for lists in args.nlist:  # as govqa builds it: float16 vectors in the lists, k-means on 39 a list
        t = time.perf_counter()
        ivf, _ = vector_index(vectors, vectors.shape[1], IndexSettings(exact_max=1, ann="ivf", ivf_lists=lists))
        build = time.perf_counter() - t
        for nprobe in args.nprobe:
            ivf.nprobe = nprobe
            times, found = timed(lambda q, index=ivf: index.search(q[None, :], 10)[1][0], queries)
            recall = tie_aware_recall(vectors, queries, truth, found)
            rows.append({"index": f"IVF float16 lists={ivf.nlist} nprobe={nprobe}", "recall_at_10": round(float(recall), 3),
                         "build_s": round(build, 1), **pct(times)})
    print(f"{len(passages)} passages (USE v3, 512 dims), {len(queries)} queries, one at a time")
    print(f"{'index':<44}{'recall@10':>10}{'p50 ms':>9}{'p99 ms':>9}{'build s':>9}")
    for r in rows:
        print(f"{r['index']:<44}{r['recall_at_10']:>10.3f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r.get('build_s', 0):>9.1f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
