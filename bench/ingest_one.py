"""Time to add one new report (about 30 passages) to an existing index: the five real reports,
and synthetic indexes of N passages. The synthetic base index holds random unit vectors instead
of embedding N passages (the ingest under test embeds only the new report, with the default
embedder, as it would in service).

    python bench/ingest_one.py [--passages 10000 100000] [--json OUT]
"""

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import REPORTS, RandomVectors, sentence_pool, synthetic_report, write_corpus  # noqa: E402
from embeddings import make_embedder  # noqa: E402
from retriever.index import IndexDir  # noqa: E402
from retriever.ingest import ingest  # noqa: E402


def synthetic_base(root: Path, corpus: Path, n: int, embedder) -> int:
    """An index of a synthetic corpus of about n passages, with random vectors stored under the
    embedder's name (so that the ingest under test finds them and embeds only the new report)."""
    write_corpus(corpus, n, seed=7, reports_dir=REPORTS)
    return ingest(root, [corpus], RandomVectors(embedder)).passages


def time_one(root: Path, work: Path, embedder, seed: int) -> dict:
    name, text, _ = synthetic_report(random.Random(seed), sentence_pool(REPORTS), 30)
    new = work / "new" / name
    new.parent.mkdir(parents=True, exist_ok=True)
    new.write_text(text, encoding="utf-8")
    t = time.perf_counter()
    result = ingest(root, [new], embedder)
    seconds = time.perf_counter() - t
    store = IndexDir(root).current_path() / "store.sqlite"
    return {"seconds": round(seconds, 2), "embedded": result.embedded, "passages": result.passages,
            "store_mb": round(store.stat().st_size / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    embedder = make_embedder("use-multilingual")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ingest(work / "five", [REPORTS], embedder)
        rows.append({"index": "the five reports"} | time_one(work / "five", work, embedder, 1))
        for n in args.passages:
            t = time.perf_counter()
            size = synthetic_base(work / f"s{n}", work / f"corpus{n}", n, embedder)
            print(f"  built a synthetic base of {size} passages in {time.perf_counter() - t:.0f}s", file=sys.stderr)
            rows.append({"index": f"synthetic, {size} passages"} | time_one(work / f"s{n}", work, embedder, n))
    print(f"{'index':<32}{'seconds':>9}{'embedded':>10}{'passages after':>16}{'store.sqlite MB':>17}")
    for r in rows:
        print(f"{r['index']:<32}{r['seconds']:>9.2f}{r['embedded']:>10}{r['passages']:>16}{r['store_mb']:>17}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
