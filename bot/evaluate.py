"""`govqa eval`: retrieval and answer figures on a question file (format: shared/eval/README.md).

A wrong number is worse than "not found", so besides accuracy the figures give the share of all
questions answered with something that is not the expected answer (`wrong_answer_rate`), and say
first which reports the index lacks (failed to read) or holds with metadata a person should check."""

from __future__ import annotations

import json
import unicodedata
from collections import defaultdict
from pathlib import Path

from .answer import year_label
from .service import Service

KINDS = ("numeric", "fact", "meta", "unanswerable", "compare")
# the kind whose figures are also given apart: quoted targets are on the other kinds
CROSS_REPORT_KIND = "compare"
FIGURES = ("hit_at_1", "hit_at_5", "mrr_at_10", "answer_accuracy", "wrong_answer_rate", "citation_accuracy",
           "refusal_accuracy", "false_refusal_rate")
# why a question failed, the causes that matter most first: a wrong figure misleads, a refusal
# of an unanswerable question that was answered misleads too; the others only fall short
CAUSES = ("wrong figure", "should refuse", "false refusal", "citation only", "retrieval only")
SEARCH_K = 10  # passages searched per question: MRR@10, and a list question's reports found in the top 10
HIT_K = 5


def _n(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "")


def _strings(value) -> list[str]:
    """A question's doc / evidence / answer as a list: null -> [], "x" -> ["x"], a list as it is."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


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
        docs, evidence = _strings(q.get("doc")), _strings(q.get("evidence"))
        if docs and evidence and len(docs) != len(evidence):  # a doc without evidence is scored on its answer only
            raise ValueError(f"{path}:{number}: {len(docs)} doc(s) but {len(evidence)} evidence string(s); "
                             "give one evidence per doc, in the same order")
        questions.append(q)
    return questions


def index_problems(service: Service) -> tuple[list[dict], list[dict]]:
    """The files whose last ingest into the served generation failed (from its ingest log, so that
    a reused index still says so), and the indexed reports whose metadata needs a person's check."""
    index = service.index
    last: dict[str, tuple[str, str]] = {}
    for _, path, status, detail in index.log():
        last[path] = (status, detail)
    failed = [{"file": Path(path).name, "path": path, "reason": detail}
              for path, (status, detail) in last.items() if status == "failed"]
    review = [{"file": r.source, "path": r.path, "org": r.org, "year": r.year, "reasons": list(r.review)}
              for r in index.reports if r.review]
    return failed, review


def _score(service: Service, q: dict) -> tuple[str, dict[str, float], dict | None]:
    """One question: its kind, its measures (1.0 / 0.0, or a share), and its failure (None if none)."""
    expected = _strings(q["answer"])
    kind = q.get("kind") or ("fact" if expected else "unanswerable")
    docs, evidence = _strings(q.get("doc")), _strings(q.get("evidence"))
    pairs = list(zip(docs, evidence, strict=True)) if docs and evidence else []
    listed = isinstance(q.get("doc"), list) or isinstance(q.get("evidence"), list)
    m: dict[str, float] = {}
    problems: list[str] = []  # answer, citation, retrieval, in that order
    retrieval_problem = ""
    retrieved = True
    if pairs:
        hits = service.searcher.search(q["question"], k=SEARCH_K).hits
        if listed:
            # a report counts as found when a passage of it in the top SEARCH_K holds its evidence;
            # hit@5 of a list question is the share of its reports found
            found = [any(h.passage.source == doc and _n(ev) in _n(h.passage.text) for h in hits) for doc, ev in pairs]
            m["hit_at_5"] = sum(found) / len(found)
            retrieved = all(found)
            if not retrieved:
                missed = [doc for (doc, _), ok in zip(pairs, found, strict=True) if not ok]
                retrieval_problem = f"retrieval: {', '.join(missed)} not in the top {SEARCH_K}"
        else:
            doc, ev = pairs[0]
            rank = next((i + 1 for i, h in enumerate(hits) if h.passage.source == doc and _n(ev) in _n(h.passage.text)), None)
            m["hit_at_1"] = float(rank == 1)
            m["hit_at_5"] = float(rank is not None and rank <= HIT_K)
            m["mrr_at_10"] = 1.0 / rank if rank else 0.0
            retrieved = rank == 1
            if not retrieved:
                retrieval_problem = f"retrieval rank {rank}"
    answer = service.composer.answer(q["question"])
    cause = None
    if expected:
        correct = answer.found and all(_n(a) in _n(answer.text) for a in expected)
        m["answer_accuracy"] = float(correct)
        m["false_refusal_rate"] = float(not answer.found)
        m["wrong_answer_rate"] = float(answer.found and not correct)
        cited = True
        if pairs:
            if listed:  # every evidence in a cited excerpt of its own report
                cited = all(any(c.source == doc and _n(ev) in _n(c.excerpt) for c in answer.citations) for doc, ev in pairs)
            else:  # the first citation's excerpt holds the evidence
                cited = bool(answer.citations) and _n(pairs[0][1]) in _n(answer.citations[0].excerpt)
            m["citation_accuracy"] = float(cited)
        if not correct:
            problems.append("answer" if answer.found else "not answered")
        if not cited:
            problems.append("citation")
        if not answer.found:
            cause = "false refusal"
        elif not correct:
            cause = "wrong figure"
        elif not cited:
            cause = "citation only"
        elif not retrieved:
            cause = "retrieval only"
    else:
        m["refusal_accuracy"] = float(not answer.found)
        m["wrong_answer_rate"] = float(answer.found)
        if answer.found:
            cause = "should refuse"
            problems.append("should refuse")
    if retrieval_problem:
        problems.append(retrieval_problem)
    failure = None
    if cause:
        failure = {
            "id": q["id"], "kind": kind, "question": q["question"], "expected": expected, "cause": cause,
            "problems": problems, "returned": answer.text,
            "first_citation": answer.citations[0].excerpt if answer.citations else None,
            "first_citation_source": answer.citations[0].source if answer.citations else None,
        }
    return kind, m, failure


def _summary(measures: list[dict[str, float]]) -> dict:
    values: dict[str, list[float]] = defaultdict(list)
    for m in measures:
        for key, value in m.items():
            values[key].append(value)
    out = {key: (round(sum(values[key]) / len(values[key]), 4) if values[key] else None) for key in FIGURES}
    out["n"] = len(measures)
    return out


def evaluate(service: Service, questions: list[dict]) -> dict:
    """The figures on these questions: overall (at the top level), by kind, and without the
    cross-report kind; the failures, each with its cause; the reports that failed to index or need
    review."""
    by_kind: dict[str, list[dict[str, float]]] = defaultdict(list)
    failures = []
    for q in questions:
        kind, m, failure = _score(service, q)
        by_kind[kind].append(m)
        if failure:
            failures.append(failure)
    everything = [m for ms in by_kind.values() for m in ms]
    figures = _summary(everything)
    n = figures.pop("n")
    figures["questions"] = n
    order = [k for k in KINDS if k in by_kind] + sorted(k for k in by_kind if k not in KINDS)
    figures["by_kind"] = {k: _summary(by_kind[k]) for k in order}
    figures["non_compare"] = _summary([m for k, ms in by_kind.items() if k != CROSS_REPORT_KIND for m in ms])
    failed, review = index_problems(service)
    figures["reports_failed"] = len(failed)
    figures["reports_failed_list"] = failed
    figures["reports_need_review"] = len(review)
    figures["reports_need_review_list"] = review
    figures["generation"] = service.generation
    rank = {c: i for i, c in enumerate(CAUSES)}
    figures["failures"] = sorted(failures, key=lambda f: rank[f["cause"]])  # stable: file order within a cause
    return figures


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def format_problems(figures: dict) -> list[str]:
    """The loud block: reports missing from the index, and reports whose metadata is a guess."""
    lines = []
    if figures.get("reports_failed"):
        lines.append(f"!! {_plural(figures['reports_failed'], 'report', 'reports')} failed to index "
                     "(questions about them cannot be answered):")
        lines += [f"!!   {f['file']}: {f['reason']}" for f in figures["reports_failed_list"]]
    if figures.get("reports_need_review"):
        lines.append(f"!! {_plural(figures['reports_need_review'], 'report needs', 'reports need')} "
                     "a person's check of its metadata:")
        lines += [f"!!   {r['file']} ({r['org'] or '单位不明'} · {year_label(r['year'])}): needs review: {'; '.join(r['reasons'])}"
                  for r in figures["reports_need_review_list"]]
    return lines


def format_figures(figures: dict) -> str:
    def fmt(v):
        return "-" if v is None else f"{v:.3f}"

    def row(name: str, m: dict) -> str:
        return f"{name:14}" + "".join(f"{fmt(m.get(k)):>{len(k) + 2}}" for k in FIGURES) + f"   n={m['n']}"

    lines = format_problems(figures)
    if lines:
        lines.append("")
    lines.append(f"{'':14}" + "".join(f"{k:>{len(k) + 2}}" for k in FIGURES))
    lines.append(row("overall", figures | {"n": figures["questions"]}))
    for kind, m in figures["by_kind"].items():
        lines.append(row(kind, m))
    if CROSS_REPORT_KIND in figures["by_kind"]:
        lines.append(row(f"non-{CROSS_REPORT_KIND}", figures["non_compare"]))
    if figures["failures"]:
        lines += ["", f"failures ({len(figures['failures'])}):"]
        for cause in CAUSES:
            group = [f for f in figures["failures"] if f["cause"] == cause]
            if not group:
                continue
            lines.append(f"  {cause} ({len(group)}):")
            for f in group:
                lines.append(f"    {f['id']} [{f['kind']}] {f['question']}  [{', '.join(f['problems'])}]")
                returned = " / ".join(line for line in f["returned"].splitlines() if line.strip())  # one line a failure
                lines.append(f"        expected {f['expected']}; returned: {returned}")
                if f["first_citation"]:
                    lines.append(f"        cited ({f['first_citation_source']}): {f['first_citation']}")
    return "\n".join(lines)
