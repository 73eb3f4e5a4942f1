"""Facts queries: the figures of the facts table (retriever/facts.py) that a query names, for
exports into spreadsheets (`govqa facts`, GET /v1/facts). A fact matches when its sentence and
clause say the query's words in any of their thesaurus forms, scored as answers score a clause
(question.coverage), and when its figure is of the kind the query asks for (多少件, 比例)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

from retriever.facts import Fact
from retriever.search import HybridSearcher
from retriever.types import Filters, Report

from .question import CLAUSE_SHARE, MEASURE_MISMATCH, SENTENCE_SHARE, Ask, QuestionReader, coverage, normalise

# Passages read for facts: the best by BM25 over the query's words, this many for each fact asked.
# At 100k passages, 60 queries without unit or year: 1 a fact lists 87.7 facts a query (of 100
# asked) in 27 ms, 3 lists 89.8 in 60 ms
ROWS_PER_FACT = 1
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

# The columns of an export, in order (CSV header, JSON keys)
FACT_FIELDS = ("org", "year", "value", "number", "high", "unit", "measure", "kind", "qualifiers", "predicate", "object",
               "clause", "section", "source", "title", "report_id", "start", "end", "score")


@dataclass(frozen=True)
class FoundFact:
    fact: Fact
    report: Report
    section: str
    score: float

    def to_dict(self) -> dict:
        f, r = self.fact, self.report
        return {"org": r.org, "year": r.year, "value": f.text, "number": f.value, "high": f.high, "unit": f.unit,
                "measure": f.measure, "kind": f.kind, "qualifiers": list(f.qualifiers), "predicate": f.predicate,
                "object": f.object, "clause": f.clause, "section": self.section, "source": r.source, "title": r.title,
                "report_id": r.id, "start": f.start, "end": f.end, "score": round(self.score, 4)}


@dataclass
class FactResult:
    query: str
    facts: list[FoundFact]
    searched: dict = field(default_factory=dict)  # years, orgs, reports
    why: str = ""  # why nothing was listed, when nothing was

    def to_dict(self) -> dict:
        return {"query": self.query, "facts": [f.to_dict() for f in self.facts], "searched": self.searched, "why": self.why}

    def to_csv(self) -> str:
        """The facts as CSV (UTF-8, a header row; qualifiers joined by spaces), for spreadsheets."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FACT_FIELDS, lineterminator="\r\n")
        writer.writeheader()
        for f in self.facts:
            row = f.to_dict()
            row["qualifiers"] = " ".join(row["qualifiers"])
            writer.writerow(row)
        return out.getvalue()


class FactFinder:
    def __init__(self, searcher: HybridSearcher, reader: QuestionReader, min_score: float):
        """`min_score`: a fact is listed when its sentence and clause say this much of the query's
        words (weighed as an answer's clause is; the answers' min_confidence)."""
        self.searcher = searcher
        self.reader = reader
        self.min_score = min_score

    def find(self, query: str, years=(), orgs=(), limit: int = DEFAULT_LIMIT, filters: Filters | None = None) -> FactResult:
        """The facts that `query` names ("法律意见书", "2023年出具了多少份法律意见书"), of the units and
        years it names or is given (or `filters`, whole), best first (then by unit and year)."""
        query = (query or "").strip()
        if not query:
            raise ValueError("the facts query is empty")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit!r}")
        catalog, index = self.searcher.catalog, self.searcher.index
        if filters is None:
            filters = catalog.resolve(query, years=years, orgs=orgs)
        searched = {"years": list(filters.years), "orgs": list(filters.orgs), "reports": 0}
        if filters.unknown:
            return FactResult(query, [], searched, f"没有收录{'、'.join(filters.unknown)}的报告")
        reports = catalog.reports_of(filters)
        searched["reports"] = len(reports)
        if not reports or not index.size:
            return FactResult(query, [], searched, "没有符合条件的报告")
        ask = self.reader.asks(query, filters)[0]
        if not ask.terms:
            return FactResult(query, [], searched, "查询里没有要查找的内容")
        within = [r.id for r in reports] if len(reports) < len(index.reports) else None
        tokens = self.searcher.tokenizer.tokens(" ".join(f for t in ask.terms for f in t.forms))
        chosen = np.sort(index.lexical_top(tokens, limit * ROWS_PER_FACT, within)).astype(np.int64)
        sections = {int(r): p.section for r, p in zip(chosen, index.passages(chosen.tolist()), strict=True)}
        # what a fact's sentence, section and unit say of the query: computed once for the facts
        # that share them (a sentence holds ~1.5 figures, a report dozens)
        said: dict[tuple, float] = {}
        units: dict[str, str] = {}
        found = []
        for fact in index.facts(chosen):
            if not kind_asked(ask, fact):
                continue
            report = index.report_by_id[fact.report_id]
            key = (fact.report_id, fact.sentence_start, fact.row)
            if key not in said:
                if report.id not in units:
                    units[report.id] = normalise(" ".join((report.org, *report.aliases)))
                sentence = normalise(report.text[fact.sentence_start : fact.sentence_end])
                said[key] = coverage(ask.terms, f"{sentence}|{normalise(sections[fact.row])}|{units[report.id]}")
            score = SENTENCE_SHARE * said[key] + CLAUSE_SHARE * coverage(ask.terms, normalise(fact.clause))
            if not measure_agrees(ask, fact):
                score -= MEASURE_MISMATCH
            if score >= self.min_score:
                found.append(FoundFact(fact, report, sections[fact.row], score))
        found.sort(key=lambda f: (-f.score, f.report.org, f.report.year or 0, f.fact.start))
        return FactResult(query, found[:limit], searched, "" if found else "报告中没有找到相关的数字")


def kind_asked(ask: Ask, fact: Fact) -> bool:
    """Whether a figure is of the kind a question asks: 比例 wants a percentage, 排第几 a rank,
    多少钱 money, 多少件 a count (not a rate, unless a change is asked)."""
    if not ask.numeric:
        return True
    if ask.rate:
        return fact.kind == "percent"
    if ask.measure_kind in ("ordinal", "money", "duration"):
        return fact.kind == ask.measure_kind
    return fact.kind != "percent" or ask.change


def measure_agrees(ask: Ask, fact: Fact) -> bool:
    """Whether the figure has a measure word asked (多少份 -> 份), or none was asked."""
    return not ask.measure_words or bool({fact.unit, fact.measure} & ask.measure_words)
