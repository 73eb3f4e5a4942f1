"""Embedding throughput of the default embedder (USE v3) on a synthetic corpus (bench/corpus.py):
in this process against worker processes, each on one core (one numpy BLAS thread a process, as
govqa sets it), in the same run, with the vectors compared.

    python bench/embed.py [--passages 6000] [--workers 2]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import REPORTS, write_corpus  # noqa: E402
from embeddings.use import USEEmbedder  # noqa: E402
from retriever.chunking import chunk_report  # noqa: E402
from retriever.ingest import embed_text, parse_report  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=6000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_corpus(Path(tmp), args.passages, seed=5, reports_dir=REPORTS)
        texts = [embed_text(p) for f in files for p in chunk_report(parse_report(f))]
    rows = []
    for workers in (1, args.workers):
        embedder = USEEmbedder(workers=workers)
        embedder.parallel_min = 1
        t = time.perf_counter()
        vectors = embedder.embed_documents(texts)
        rows.append((workers, len(texts) / (time.perf_counter() - t), vectors))
    base = rows[0][1]
    print(f"{len(texts)} passages, USE v3; worker start-up included")
    for workers, rate, vectors in rows:
        where = "this process" if workers == 1 else f"{workers} worker processes"
        print(f"  {where:<22}{rate:>8.0f} passages/s  {rate / base:.2f}x  "
              f"max |difference| {float(np.abs(vectors - rows[0][2]).max()):.1e}")


if __name__ == "__main__":
    main()
