"""jieba segmentation of N synthetic passages, in one process and in worker processes (what an
ingest's build does with many passages to segment), in the same run.

    python bench/segment.py [--passages 20000] [--json OUT]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import REPORTS, write_corpus  # noqa: E402
from retriever.chunking import chunk_report  # noqa: E402
from retriever.ingest import parse_report  # noqa: E402
from retriever.tokenize import get_tokenizer, index_words_many  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=20_000)
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_corpus(Path(tmp), args.passages, seed=7, reports_dir=REPORTS)
        texts = [p.text for f in files for p in chunk_report(parse_report(f))]
    get_tokenizer().index_words("预热")  # the dictionary load is not segmentation
    rows = []
    for workers in (1, len(os.sched_getaffinity(0))):
        t = time.perf_counter()
        for _ in index_words_many(texts, [True] * len(texts), workers=workers):
            pass
        seconds = time.perf_counter() - t
        rows.append({"workers": workers, "passages": len(texts), "seconds": round(seconds, 1),
                     "passages_per_s": round(len(texts) / seconds)})
    print(f"{'processes':>10}{'passages':>10}{'seconds':>9}{'passages/s':>12}")
    for r in rows:
        print(f"{r['workers']:>10}{r['passages']:>10}{r['seconds']:>9}{r['passages_per_s']:>12}")
    print(f"speed-up: {rows[0]['seconds'] / rows[-1]['seconds']:.2f}x")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
