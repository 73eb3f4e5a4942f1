"""Tokenising N synthetic passages for BM25, in one run:

- segmentation: jieba's Python and jieba-rs (what govqa uses), both with jieba's dictionary and ours;
- all BM25 tokens as ids: per token in Python (each passage's Tokenizer.tokens through a dict) and
  by Vocabulary.encode (what an ingest's build does: n-grams as numbers, a window at a time).

    python bench/segment.py [--passages 20000] [--json OUT]
"""

import argparse
import json
import logging
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import REPORTS, write_corpus  # noqa: E402
from retriever.chunking import chunk_report  # noqa: E402
from retriever.index import ENCODE_WINDOW  # noqa: E402
from retriever.ingest import parse_report  # noqa: E402
from retriever.tokenize import Vocabulary, get_tokenizer, normalize, userdict_path  # noqa: E402


def per_token(texts: list[str]) -> None:
    tokenizer, vocab = get_tokenizer(), {}
    for text in texts:
        tokens = tokenizer.tokens(text)
        np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), dtype=np.int32, count=len(tokens))


def windowed(texts: list[str]) -> None:
    vocab = Vocabulary()
    for start in range(0, len(texts), ENCODE_WINDOW):
        vocab.encode(texts[start : start + ENCODE_WINDOW], [None] * len(texts[start : start + ENCODE_WINDOW]))


def main() -> None:
    import jieba

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=20_000)
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_corpus(Path(tmp), args.passages, seed=7, reports_dir=REPORTS)
        texts = [p.text for f in files for p in chunk_report(parse_report(f))]
    normalized = [normalize(t) for t in texts]
    jieba.setLogLevel(logging.WARNING)
    reference = jieba.Tokenizer()
    with resources.as_file(userdict_path()) as path:
        reference.load_userdict(str(path))
    reference.initialize()
    segmenter = get_tokenizer()._segmenter  # dictionaries loaded before timing
    cases = [
        ("segment", "jieba (Python)", lambda: [reference.lcut(t, HMM=False) for t in normalized]),
        ("segment", "jieba-rs", lambda: [segmenter.cut(t, False) for t in normalized]),
        ("tokens to ids", "per token", lambda: per_token(texts)),
        ("tokens to ids", "Vocabulary.encode", lambda: windowed(texts)),
    ]
    rows = []
    for task, how, fn in cases:
        t = time.perf_counter()
        fn()
        seconds = time.perf_counter() - t
        rows.append({"task": task, "how": how, "passages": len(texts), "seconds": round(seconds, 2),
                     "passages_per_s": round(len(texts) / seconds)})
    print(f"{'task':<15}{'how':<20}{'passages':>10}{'seconds':>9}{'passages/s':>12}")
    for r in rows:
        print(f"{r['task']:<15}{r['how']:<20}{r['passages']:>10}{r['seconds']:>9}{r['passages_per_s']:>12}")
    print(f"jieba-rs / jieba: {rows[0]['seconds'] / rows[1]['seconds']:.1f}x; "
          f"Vocabulary.encode / per token: {rows[2]['seconds'] / rows[3]['seconds']:.1f}x")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
