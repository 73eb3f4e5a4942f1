"""XQuAD-R (zh) retrieval benchmark: every sentence (or paragraph) of 48 Wikipedia articles is a
candidate; a question's relevant candidate is the one holding its answer span. Prints MRR@10 and
recall@5 for lexical only, dense only and the configured hybrid (and an alpha sweep with --sweep),
plus how often the answer span appears in govqa's answer lead.

    python bench/xquad.py [--data ../shared/bench/xquad_r_zh.json] [--sweep] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.answer import AnswerComposer  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.service import build_embedder  # noqa: E402
from retriever.index import Index, IndexSettings, build_generation  # noqa: E402
from retriever.search import HybridSearcher  # noqa: E402
from retriever.types import Filters, Passage, Report  # noqa: E402


def load(path: Path, level: str):
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    reports, passages, questions = [], [], []
    for a, article in enumerate(data):
        text_parts, offset = [], 0
        rid = f"a{a:03d}"
        spans = []
        for p, para in enumerate(article["paragraphs"]):
            units = [(para["context"][s:e], s, e) for s, e in para["sentence_breaks"]] if level == "sentence" else [(para["context"], 0, len(para["context"]))]
            for u, (text, s, e) in enumerate(units):
                pid = f"{rid}-{p}-{u}"
                start = offset
                text_parts.append(text)
                offset += len(text) + 1
                passages.append(Passage(id=pid, report_id=rid, section="", text=text, start=start, end=start + len(text),
                                        org=article["title"], year=0, source=article["title"]))
                spans.append((p, s, e, pid))
            for qa in para["qas"]:
                ans = qa["answers"][0]
                rel = next(pid for pp, s, e, pid in spans if pp == p and s <= ans["answer_start"] < e)
                questions.append((qa["question"], rel, ans["text"]))
        reports.append(Report(id=rid, source=article["title"], title=article["title"], org=article["title"], aliases=(),
                              region="", year=0, published=None, text="\n".join(text_parts)))
    return reports, passages, questions


def build(reports, passages, embedder, workdir: Path) -> Index:
    t = time.perf_counter()
    vectors = embedder.embed_documents([p.text for p in passages])
    path = workdir / f"gen-{len(passages)}"
    path.mkdir()
    build_generation(path, reports, passages, vectors, [p.id for p in passages], [], embedder.name, embedder.dim, IndexSettings())
    print(f"  indexed {len(passages)} candidates in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return Index(path, embedder.name, embedder.dim)


def measure(searcher: HybridSearcher, questions, mode: str) -> dict:
    rr, r5 = [], []
    for q, rel, _ in questions:
        ids = [h.passage.id for h in searcher.search(q, k=10, filters=Filters(), mode=mode).hits]
        rank = ids.index(rel) + 1 if rel in ids else None
        rr.append(1 / rank if rank else 0.0)
        r5.append(float(rank is not None and rank <= 5))
    return {"mrr_at_10": round(float(np.mean(rr)), 4), "recall_at_5": round(float(np.mean(r5)), 4)}


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", s))


def answer_span_rate(composer: AnswerComposer, questions) -> dict:
    found = contained = 0
    for q, _, span in questions:
        a = composer.answer(q, filters=Filters())
        found += a.found
        contained += a.found and _squash(span) in _squash(a.text)
    n = len(questions)
    return {"answered": round(found / n, 4), "span_in_lead": round(contained / n, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "bench" / "xquad_r_zh.json"))
    ap.add_argument("--config", default=None)
    ap.add_argument("--sweep", action="store_true", help="also measure alpha from 0 to 1")
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    config = load_config(args.config)
    embedder = build_embedder(config)
    alpha, context = float(config["search"]["alpha"]), float(config["search"]["context"])
    out: dict = {"embedder": embedder.name, "alpha": alpha, "context": context}
    with tempfile.TemporaryDirectory() as tmp:
        for level in ("sentence", "paragraph"):
            reports, passages, questions = load(Path(args.data), level)
            index = build(reports, passages, embedder, Path(tmp))
            searcher = HybridSearcher(index, embedder, alpha=alpha, context=context)
            row = {mode: measure(searcher, questions, mode) for mode in ("lexical", "dense", "hybrid")}
            if args.sweep:
                row["sweep"] = {}
                for a in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
                    row["sweep"][str(a)] = measure(HybridSearcher(index, embedder, alpha=a, context=context),
                                                   questions, "hybrid")
                for c in (0.0, 0.1, 0.2, 0.5):
                    row["sweep"][f"context {c}"] = measure(HybridSearcher(index, embedder, alpha=alpha, context=c),
                                                           questions, "hybrid")
            composer = AnswerComposer(searcher, top_k=int(config["answer"]["top_k"]),
                                      min_confidence=float(config["answer"]["min_confidence"]))
            row["answers"] = answer_span_rate(composer, questions)
            out[level] = row
            print(f"\n{level} level ({len(passages)} candidates, {len(questions)} questions, alpha {alpha}, context {context}):")
            print(f"  {'':10}{'MRR@10':>10}{'recall@5':>10}")
            for mode in ("lexical", "dense", "hybrid"):
                print(f"  {mode:10}{row[mode]['mrr_at_10']:>10.3f}{row[mode]['recall_at_5']:>10.3f}")
            for a, m in row.get("sweep", {}).items():
                print(f"  {'alpha ' + a if a[0].isdigit() else a:<12}{m['mrr_at_10']:>10.3f}{m['recall_at_5']:>10.3f}")
            print(f"  answers: {row['answers']['answered']:.3f} answered, answer span in the lead for {row['answers']['span_in_lead']:.3f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
