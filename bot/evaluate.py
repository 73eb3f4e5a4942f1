"""`govqa eval`: retrieval and answer figures on a question file (format: shared/eval/README.md)."""

from __future__ import annotations

import json
import unicodedata
from collections import defaultdict
from pathlib import Path

from .service import Service

KINDS = ("numeric", "fact", "meta", "unanswerable")


def _n(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "")


def load_questions(path: str | Path) -> list[dict]:
    questions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
        missing = {"id", "question", "answer"} - set(q)
        if missing:
            raise ValueError(f"{path}:{number}: missing {sorted(missing)}")
        questions.append(q)
    return questions


def evaluate(service: Service, questions: list[dict]) -> dict:
    per_kind: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    failures = []
    for q in questions:
        kind = q.get("kind") or ("unanswerable" if not q["answer"] else "fact")
        answerable = bool(q["answer"])
        evidence, doc = q.get("evidence"), q.get("doc")
        m = per_kind[kind]
        rank = None
        if evidence and doc:
            hits = service.searcher.search(q["question"], k=10).hits
            rank = next((i + 1 for i, h in enumerate(hits) if h.passage.source == doc and _n(evidence) in _n(h.passage.text)), None)
            m["hit_at_1"].append(float(rank == 1))
            m["hit_at_5"].append(float(rank is not None and rank <= 5))
            m["mrr_at_10"].append(1.0 / rank if rank else 0.0)
        answer = service.composer.answer(q["question"])
        problems = []
        if answerable:
            correct = answer.found and all(_n(a) in _n(answer.text) for a in q["answer"])
            m["answer_accuracy"].append(float(correct))
            m["false_refusal_rate"].append(float(not answer.found))
            if not correct:
                problems.append("answer")
            if evidence:
                cited = bool(answer.citations) and _n(evidence) in _n(answer.citations[0].excerpt)
                m["citation_accuracy"].append(float(cited))
                if not cited:
                    problems.append("citation")
            if rank != 1 and evidence and doc:
                problems.append(f"retrieval rank {rank}")
        else:
            m["refusal_accuracy"].append(float(not answer.found))
            if answer.found:
                problems.append("should refuse")
        if problems:
            failures.append({
                "id": q["id"], "question": q["question"], "expected": q["answer"], "problems": problems,
                "returned": answer.text, "first_citation": answer.citations[0].excerpt if answer.citations else None,
            })
    overall: dict[str, list[float]] = defaultdict(list)
    for m in per_kind.values():
        for key, values in m.items():
            overall[key].extend(values)

    def summary(m) -> dict:
        return {k: round(sum(v) / len(v), 4) if v else None for k, v in sorted(m.items())} | {"n": max((len(v) for v in m.values()), default=0)}

    figures = {key: (round(sum(v) / len(v), 4) if v else None) for key, v in overall.items()}
    for key in ("hit_at_1", "hit_at_5", "mrr_at_10", "answer_accuracy", "citation_accuracy", "refusal_accuracy", "false_refusal_rate"):
        figures.setdefault(key, None)
    figures["questions"] = len(questions)
    figures["by_kind"] = {k: summary(per_kind[k]) for k in KINDS if k in per_kind}
    figures["failures"] = failures
    return figures


def format_figures(figures: dict) -> str:
    keys = ("hit_at_1", "hit_at_5", "mrr_at_10", "answer_accuracy", "citation_accuracy", "refusal_accuracy", "false_refusal_rate")

    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    lines = [f"{'':14}" + "".join(f"{k:>20}" for k in keys)]
    lines.append(f"{'overall':14}" + "".join(f"{fmt(figures.get(k)):>20}" for k in keys) + f"   n={figures['questions']}")
    for kind, m in figures["by_kind"].items():
        lines.append(f"{kind:14}" + "".join(f"{fmt(m.get(k)):>20}" for k in keys) + f"   n={m['n']}")
    if figures["failures"]:
        lines.append("")
        lines.append("failures:")
        for f in figures["failures"]:
            lines.append(f"  {f['id']} {f['question']}  [{', '.join(f['problems'])}]")
            lines.append(f"      expected {f['expected']}; returned: {f['returned']}")
    return "\n".join(lines)
