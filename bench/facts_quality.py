"""How well the facts table reads figures: precision and recall of the figures extracted from a
hand-labelled sample of sentences of the five seed reports, and of those with the right measure
word and predicate (and object).

The sample (bench/data/facts_labelled.jsonl): 80 sentences drawn at random (seed 17) from the 135
sentences of the seed reports that hold an Arabic digit or a Chinese numeral before a measure word,
each labelled by hand with every figure it states: the figure as written, its measure word, the verb
it counts the result of (predicate), what it counts (object) and its qualifiers. A figure extracted
matches a labelled one with the same text (NFKC); its predicate and object count as right when
they equal the label's or one holds the other (登记 / 登记备案), both empty counting as equal.

    python bench/facts_quality.py [--show]
"""

import argparse
import json
import sys
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retriever.facts import passage_facts  # noqa: E402
from retriever.types import Passage  # noqa: E402

LABELS = REPO / "bench" / "data" / "facts_labelled.jsonl"


def _n(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def agrees(got: str, want: str) -> bool:
    got, want = _n(got), _n(want)
    return got == want or bool(got and want and (got in want or want in got))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--show", action="store_true", help="print every disagreement")
    args = ap.parse_args()
    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    labelled = extracted = matched = measure_ok = predicate_ok = both_ok = object_ok = 0
    for row in rows:
        s = row["sentence"]
        got = passage_facts(Passage("", "", "", s, 0, len(s), "", None, ""), 0)
        want = list(row["facts"])  # each labelled figure is matched once (a sentence may say 100% twice)
        labelled += len(want)
        extracted += len(got)
        for f in got:
            w = next((x for x in want if _n(x["text"]) == _n(f.text)), None)
            if w is not None:
                want.remove(w)
            if w is None:
                if args.show:
                    print(f"{row['id']} extra   {f.text}  ({f.predicate}·{f.object})  {s[:60]}")
                continue
            matched += 1
            m = _n(f.unit) == _n(w["measure"])
            p = agrees(f.predicate, w["predicate"])
            o = agrees(f.object, w["object"])
            measure_ok += m
            predicate_ok += p
            both_ok += m and p
            object_ok += m and p and o
            if args.show and not (m and p and o):
                print(f"{row['id']} differs {f.text}: measure {f.unit}/{w['measure']} predicate {f.predicate}/{w['predicate']} "
                      f"object {f.object}/{w['object']}")
        if args.show:
            for w in want:
                print(f"{row['id']} missed  {w['text']}  {s[:60]}")
    print(f"sample: {len(rows)} sentences, {labelled} labelled figures, {extracted} extracted")
    for name, ok in (("figure", matched), ("figure + measure word", measure_ok), ("figure + measure + predicate", both_ok),
                     ("figure + measure + predicate + object", object_ok)):
        print(f"{name:40s} precision {ok / max(extracted, 1):.3f}  recall {ok / max(labelled, 1):.3f}  ({ok})")


if __name__ == "__main__":
    main()
