"""Milvus ingest costs against a running Milvus (or `milvus-lite server`), not a test:

1. time: one new report (about 30 passages) ingested into a Milvus index of N synthetic passages
   (its base built with random vectors under the default embedder's name, as bench/ingest_one.py
   does; the ingest under test embeds only the new report with the default embedder), then the
   same report removed. Run it with this checkout, and with another on PYTHONPATH to compare.
2. --parity: BM25 top 10 of the Milvus backend against a fresh embedded build of the same files on
   the dev questions, right after a full build, during a grace period (one report added and one
   replaced by a small ingest: the replaced rows are still in the collection) and after cleanup.

    python bench/ingest_milvus.py --uri http://127.0.0.1:19530 --prefix bench [--passages 10000] [--json OUT]
    python bench/ingest_milvus.py --uri http://127.0.0.1:19530 --prefix parity --parity
"""

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

# appended, not prepended: PYTHONPATH=<another checkout> times that checkout's code
sys.path.append(str(Path(__file__).resolve().parent.parent))

from bench.corpus import REPORTS, RandomVectors, sentence_pool, synthetic_report, write_corpus  # noqa: E402
from embeddings import make_embedder  # noqa: E402
from retriever.milvus import MilvusStore, ingest_milvus  # noqa: E402

DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev.jsonl"


def _fresh(store: MilvusStore) -> None:
    """Nothing under the prefix: its alias and collections dropped."""
    if store.prefix in store.call("list_aliases").get("aliases", []):
        store.call("drop_alias", store.prefix)
    for name in store.call("list_collections"):
        if name.startswith(store.prefix + "_"):
            store.call("drop_collection", name)


def timing(store: MilvusStore, n: int, work: Path) -> list[dict]:
    embedder = make_embedder("use-multilingual")
    _fresh(store)
    corpus = work / "corpus"
    write_corpus(corpus, n, seed=7, reports_dir=REPORTS)
    t = time.perf_counter()
    base = ingest_milvus(store, [corpus], RandomVectors(embedder))
    rows = [{"step": f"base: {base.passages} passages (random vectors)", "seconds": round(time.perf_counter() - t, 1)}]
    name, text, _ = synthetic_report(random.Random(n), sentence_pool(REPORTS), 30)
    new = work / "new" / name
    new.parent.mkdir(parents=True)
    new.write_text(text, encoding="utf-8")
    calls = getattr(store, "calls", None)  # rows written, by call (counted by this checkout's store)

    def step(label: str, paths, **kwargs):
        if calls is not None:
            calls.clear()
        t = time.perf_counter()
        result = ingest_milvus(store, paths, embedder, **kwargs)
        rows.append({"step": label, "seconds": round(time.perf_counter() - t, 2), "generation": result.generation,
                     "embedded": result.embedded, "passages": result.passages,
                     "rows written": dict(calls) if calls is not None else "(not counted)"})
        return result

    added = step("one report added", [new])
    step("nothing changed", [new])
    step("the report removed", [], remove=[next(f.report_id for f in added.files if f.status == "added")])
    return rows


def _overlap(embedded, milvus, questions) -> list[float]:
    from retriever.tokenize import get_tokenizer

    tokenizer = get_tokenizer()
    out = []
    for q in questions:
        tokens = tokenizer.tokens(q["question"])
        a = set(p.id for p in embedded.passages(embedded.lexical_top(tokens, 10).tolist()))
        b = set(p.id for p in milvus.passages(milvus.lexical_top(tokens, 10).tolist()))
        out.append(len(a & b) / max(len(a), 1))
    return out


def _collection_wide(folder: Path, changed: Path, work: Path, embedder, questions) -> float:
    """What Milvus proper would rank during the grace period (Milvus Lite keeps BM25 statistics per
    segment, Milvus collection-wide): BM25 over every row held (the replaced report's old rows too),
    searched within the reports the generation sees, against a fresh build of those."""
    from retriever.backend import EmbeddedBackend
    from retriever.index import Index, IndexDir
    from retriever.ingest import ingest

    held = work / "held"
    shutil.copytree(folder, held)
    (held / ("old-" + changed.name)).write_bytes((REPORTS / changed.name).read_bytes())
    roots = {"held": ingest(work / "held-index", [held], embedder), "fresh": ingest(work / "fresh-index", [folder], embedder)}
    assert all(not r.failed for r in roots.values())
    both = EmbeddedBackend(Index(IndexDir(work / "held-index").current_path(), embedder.name, embedder.dim))
    fresh = EmbeddedBackend(Index(IndexDir(work / "fresh-index").current_path(), embedder.name, embedder.dim))
    seen = [r.id for r in fresh.reports]

    class Seen:  # the held index searched within the reports the generation sees
        def lexical_top(self, tokens, n):
            return both.lexical_top(tokens, n, seen)

        def passages(self, rows):
            return both.passages(rows)

    overlap = _overlap(fresh, Seen(), questions)
    return round(sum(overlap) / len(overlap), 3)


def parity(store: MilvusStore, work: Path) -> list[dict]:
    """Top-10 BM25 overlap with a fresh embedded build of the same files, at each stage."""
    from retriever.backend import EmbeddedBackend
    from retriever.index import Index, IndexDir
    from retriever.ingest import ingest
    from retriever.milvus import MilvusBackend
    from tests.conftest import NEW_REPORT

    embedder = make_embedder("use-multilingual")
    questions = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    _fresh(store)
    folder = work / "reports"
    shutil.copytree(REPORTS, folder)

    incremental = work / "embedded-incremental"  # the embedded index taking the same small ingests

    def measure(stage: str) -> dict:
        root = work / f"embedded-{len(rows)}"
        ingest(root, [folder], embedder)
        ingest(incremental, [folder], embedder, prune=True)
        fresh = EmbeddedBackend(Index(IndexDir(root).current_path(), embedder.name, embedder.dim))
        delta = EmbeddedBackend(Index(IndexDir(incremental).current_path(), embedder.name, embedder.dim))
        generation = store.current()
        milvus = MilvusBackend(store, generation, embedder.name, embedder.dim)
        held = store.call("query", store.passages_name(milvus.build), filter="", output_fields=["count(*)"])[0]["count(*)"]
        overlap, own = _overlap(fresh, milvus, questions), _overlap(fresh, delta, questions)
        return {"stage": stage, "generation": generation, "rows held": held, "rows seen": int(milvus.passage_counts().sum()),
                "mean top-10 overlap": round(sum(overlap) / len(overlap), 3), "min": round(min(overlap), 2),
                "questions with the same top 10": sum(o == 1.0 for o in overlap), "questions": len(overlap),
                "embedded after the same ingests: mean overlap": round(sum(own) / len(own), 3)}

    rows: list[dict] = []
    ingest_milvus(store, [folder], embedder)
    rows.append(measure("full build"))
    changed = sorted(folder.iterdir())[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n附：本报告另行补充说明一份。", encoding="utf-8")
    new = folder / "青石县2024年报告.txt"
    new.write_text(NEW_REPORT, encoding="utf-8")
    ingest_milvus(store, [folder], embedder)
    rows.append(measure("grace period: a report added, one replaced"))
    rows[-1]["with Milvus's collection-wide statistics: mean overlap"] = _collection_wide(folder, changed, work, embedder,
                                                                                          questions)
    # two more ingests (the new report out, then in again), each followed by a cleanup with no
    # grace: the generations before the served one's predecessor go, and with them every row the
    # served generation does not see
    new.unlink()
    ingest_milvus(store, [folder], embedder, prune=True)
    store.cleanup(1, grace=0)
    new.write_text(NEW_REPORT, encoding="utf-8")
    ingest_milvus(store, [folder], embedder)
    store.cleanup(1, grace=0)
    rows.append(measure("after cleanup (every row held is seen)"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uri", required=True)
    ap.add_argument("--prefix", default="bench")
    ap.add_argument("--passages", type=int, default=10_000)
    ap.add_argument("--parity", action="store_true")
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    store = MilvusStore(args.uri, prefix=args.prefix, timeout=600.0)
    with tempfile.TemporaryDirectory() as tmp:
        rows = parity(store, Path(tmp)) if args.parity else timing(store, args.passages, Path(tmp))
    for r in rows:
        print(json.dumps(r, ensure_ascii=False))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
