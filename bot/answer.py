"""Extractive answers: the clause of the best passages that answers, with numbered citations.
A wrong number is worse than none: the answering clause is chosen from evidence that survives
rewording (the question's words or their thesaurus equivalents, the asked measure word and kind of
figure), and when no clause of the asked unit and year is confident enough, the answer says the
reports do not state it and shows what is related. What a question asks is read in question.py;
which reports it is about, by the catalog."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field, replace

from retriever.catalog import asked_unit_kinds, looks_like_unit, without_years
from retriever.facts import Fact, span_facts
from retriever.numbers import find_quantities, number_values, split_clauses, split_sentences
from retriever.search import HybridSearcher, SearchResult
from retriever.tokenize import get_tokenizer
from retriever.types import Filters, Hit, Report

from .compare import (
    SIDE_BY_SIDE,
    Comparison,
    comparable,
    difference,
    neutral_question,
    rank_question,
    read_comparison,
    shown,
    total,
)
from .facts import FactFinder, kind_asked, measure_agrees
from .question import (
    CLAUSE_SHARE,
    FACT_ASK,
    MEASURE_MISMATCH,
    NUMERIC_ASK,
    QUOTED_NAME,
    RATE_ASK,
    SENTENCE_SHARE,
    Ask,
    QuestionReader,
    coverage,
    is_meta,
    normalise,
)

MAX_QUESTION_CHARS = 500

# "那2022年呢？", "龙岗区呢": a follow-up that only swaps the unit or the year
_SWAP_ONLY = re.compile(r"^(?:那么?|还有|换成)?\s*(?P<what>.{0,40}?)\s*(?:的情况|的数字|的)?\s*(?:呢|怎么样|如何)?\s*[？?。.!！]*$")
# What a question about a report asks for, and the metadata field that answers it
_META_FIELDS = (
    ("published", re.compile(r"哪天|什么时候|何时|日期|发布|几月|哪一天")),
    ("title", re.compile(r"标题|题目|名称|叫什么")),
    ("year", re.compile(r"哪一?年|年份|年度")),
)
# The line under a report's title saying where and when it was delivered:
# (2025年5月29日在杭州市第十四届人民代表大会常务委员会第二十七次会议上)
_DELIVERED = re.compile(r"[（(]\s*\d{4}年\d{1,2}月\d{1,2}日在[^）)\n]{2,60}会议上[^）)\n]{0,10}[）)]")
_HEAD_CHARS = 400  # how far into a report its title block reaches
# A figure to make an example question of: 出具法律意见书79件 (what, figure, measure word)
_EXAMPLE_FIGURE = re.compile(r"(?<=[，,；;。\n])(?P<what>[\u4e00-\u9fff]{4,12})(?P<figure>\d+)(?P<measure>件|次|份|项|个|条|场|名|家)(?=[，,；;。])")
_EXAMPLE_CHARS = 6000  # the figures of a report's first pages: tried in order, each answered once
# Two years asked about each: "2023年和2024年的报告里…分别", "2022、2023年各…"
_EACH_YEAR = re.compile(r"(?:19|20)\d{2}\s*年?度?\s*(?:和|与|及|、|以及|跟)\s*(?:19|20)\d{2}|分别|各自|各是|各有|对比|比较")
# Sections about what was not done or is still to do: 存在的不足, 下一步工作计划, 2024年工作思路
_NOT_DONE_SECTION = re.compile(r"不足|存在.{0,4}问题|问题和|短板|下一步|工作计划|工作打算|工作思路|工作安排|展望|努力方向")
# Something a figure could be made of: a digit or a Chinese numeral
_ANY_FIGURE = re.compile(r"[0-9０-９一二两三四五六七八九十百千万亿]")
# A clause that opens an enumerated point of a section: 二是落实法律顾问制度, （三）强化监督
_TOPIC = re.compile(r"^\s*(?:[一二三四五六七八九十]+是|[（(][一二三四五六七八九十\d]+[）)]|\d+[.、．])")
# A clause that gives part of the figure before it: "其中民事诉讼50起", "含…"
_PART = re.compile(r"^\s*(?:其中|含|包括)")

# ---- how the answering clause is scored (measured with govqa eval on dev and dev2) ----------------
# A clause whose figures have the measure word asked for (多少人次 -> 人次) gains this much (one
# whose figures have none of them loses question.MEASURE_MISMATCH)
MEASURE_AGREES = 0.05
# A clause that says a sibling of a word asked and not said (科级 for 处级, 来文 for 发文, 民事诉讼 for
# 行政诉讼, 通过率 for 优秀率) gives another figure than the one asked: it loses this much
CONTRAST = 0.6
# A clause in a section about shortcomings or next year's plans does not say what the year's work
# did: it loses this much (a plan's target figure, 计划开展培训10次, is not a figure of the year)
NOT_DONE = 0.2
# Facts: a clause that says the rank the question names (第一个, 首批) gains FACT_ORDINAL; a clause
# that only opens an enumerated point (二是落实法律顾问制度) restates the topic and loses FACT_TOPIC
FACT_ORDINAL = 0.15
FACT_TOPIC = 0.1
# A term asked (IDF >= ELSEWHERE_MIN_WEIGHT) that the passage says in another sentence but the figure's sentence does not
# (简易程序 asked; 简易程序56件 elsewhere, 共处罚金8000元 here): the figure is another matter's. 0.15 chosen
# on dev2 and both paraphrase sets: 3 wrong answers fewer, no right one lost (0.2 lost 3 right ones)
ELSEWHERE = 0.15
ELSEWHERE_MIN_WEIGHT = 2.0
# A clause that gives a part of a figure (其中民事诉讼50起) loses this much unless the ask is for a part
PART_OF_FIGURE = 0.1
# A figure given for a year other than the one asked (the 2022 column of a table, "2022年审查120份"
# in a 2023 report) is not the asked year's figure: it loses as much as a sibling's figure, so that
# the asked year's clause wins, and with no such clause the answer is "not found", not a wrong year
OTHER_YEAR = 0.6
# the year a clause's figure is of: a clause opening with it ("2022年审查120份"), or a table
# heading just before it ("合同合法性审查 · 2022年：" before "120份"); not a comparison's base year
_CLAUSE_YEAR = re.compile(r"^\s*((?:19|20)\d{2})\s*年度?(?![\d月])")
_HEADING_YEAR = re.compile(r"((?:19|20)\d{2})\s*年度?\s*[：:]\s*$")
_COMPARED = re.compile(r"相比|同比|比上年|较上年|较")
# Meaning: the embedder's cosine similarity of the ask (without unit and year) and the clause moves
# the confidence by SEMANTIC_WEIGHT * (similarity - SEMANTIC_BASE). USE v3 gives 0.76 for
# 新建了几个党支部 ~ 新成立了2个党总支和4个党支部 and 0.55 for the 换届 clause beside it; unrelated
# clauses score 0.1-0.3
SEMANTIC_WEIGHT = 0.3
SEMANTIC_BASE = 0.4
SEMANTIC_MAX_CLAUSES = 4
# How far apart the similarities of one ask with two rival clauses fall: at most 0.557 over dev2 and
# both paraphrase sets (95% within 0.485), so a rival further below the best than
# SEMANTIC_WEIGHT * SEMANTIC_SPREAD is not embedded (an embedding costs 4-12 ms here)
SEMANTIC_SPREAD = 0.6
# Ranking only (never confidence): the search rank breaks ties between equally good clauses
RANK_TIE_BREAK = 0.03
# A second ask's clause must say at least this share of its own terms
FOLLOW_MIN_COVERAGE = 0.5
# How / what-measures questions: up to this many sentences of the answering passage, each saying at
# least HOW_MIN_COVERAGE of the question's words
HOW_SENTENCES = 3
HOW_MIN_COVERAGE = 0.3
# A ranking answers from the units whose reports state the figure: at most this many, found among
# the best RANK_FACTS_PER_UNIT times as many facts of the facts table
RANK_MAX_UNITS = 20
RANK_FACTS_PER_UNIT = 5
# A cited sentence shorter than this shows its whole passage
SHORT_SENTENCE = 40


def _figure_year(sentence: str, c0: int, c1: int) -> int | None:
    """The year the figure of the clause sentence[c0:c1] is given for (_CLAUSE_YEAR,
    _HEADING_YEAR), or None when the clause does not say it or compares with it."""
    clause = sentence[c0:c1]
    if _COMPARED.search(clause):
        return None
    m = _CLAUSE_YEAR.match(clause) or _HEADING_YEAR.search(sentence[:c0])
    return int(m.group(1)) if m else None


def _in_order(years: tuple[int, ...], text: str) -> list[int]:
    """Years in the order the question names them (2024年比2023年: 2024 first)."""
    return sorted(years, key=lambda y: (text.find(str(y)) if str(y) in text else len(text), y))


def _row_name(row) -> str:
    return f"{row.unit}{year_label(row.year)}"


def year_label(year: int | None) -> str:
    """A report's year as people read it: 2023年, or 年份不明 when the text did not say."""
    return f"{year}年" if year else "年份不明"


def _outside_names(text: str) -> tuple[str, str]:
    """The text normalised with the names of documents cut out (集中学习《…处罚规定》), and those names."""
    names = QUOTED_NAME.findall(text)
    return normalise(QUOTED_NAME.sub("|", text)) if names else normalise(text), normalise("|".join(names))


def _unsaid(terms, text: str) -> list:
    """The terms `text` (normalised) says in none of their full-strength forms."""
    return [t for t in terms if not any(f in text for f, share in t.forms.items() if share == 1.0)]


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    title: str
    org: str
    year: int | None  # None: the report's text does not say (it needs review)
    section: str
    excerpt: str  # exact report text
    start: int  # offsets of the excerpt in the report text
    end: int
    score: float
    mark: tuple[int, int] | None = None  # the answering clause, as offsets within the excerpt
    report_id: str = ""
    url: str = ""  # the report's web address, when known
    page: int | None = None  # the page of the file the excerpt starts on (pdf, ofd, scans); None for files without pages

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mark"] = list(self.mark) if self.mark else None
        return d


MISSING = "未提及"  # a comparison's cell for a unit or year whose report gives no figure


@dataclass(frozen=True)
class TableRow:
    """One figure of a comparison: the unit and year, the figure as the report writes it (or
    MISSING), its measure word, the citation it is read from, and the report's wording of it."""
    unit: str
    year: int | None
    value: str
    measure: str = ""
    citation: int | None = None
    wording: str = ""  # predicate · object as the report says them (出具 · 法律意见书)
    fact: Fact | None = None  # the figure read (None: MISSING)

    @property
    def number(self) -> float | None:
        return self.fact.value if self.fact else None

    @property
    def measure_base(self) -> str:
        """The measure word without 万/亿 (the value is normalised to it): 万人次 -> 人次."""
        return (self.fact.measure or self.fact.unit) if self.fact else ""

    @property
    def qualifiers(self) -> tuple[str, ...]:
        return self.fact.qualifiers if self.fact else ()

    @property
    def approximate(self) -> bool:
        return bool(self.fact and self.fact.approximate)

    def to_dict(self) -> dict:
        return {"unit": self.unit, "year": self.year, "value": self.value, "measure": self.measure,
                "citation": self.citation, "wording": self.wording, "number": self.number}


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    found: bool
    citations: tuple[Citation, ...] = ()
    related: tuple[Citation, ...] = ()  # nearest excerpts when nothing answers
    searched: dict = field(default_factory=dict)  # years, orgs, reports
    why: str = ""
    table: tuple[TableRow, ...] = ()  # a comparison's figures, one row per unit and year

    def figures(self) -> list[tuple[int, int]]:
        """Where the text states a figure of a cited clause (offsets in `text`): what a front end
        shows in bold. Figures outside the cited clauses (a unit's name, a year) are not marked."""
        cited = set().union(*(number_values(c.excerpt[c.mark[0]:c.mark[1]]) for c in self.citations if c.mark))
        return [(q.start, q.end) for q in find_quantities(self.text) if q.value in cited]

    def to_dict(self) -> dict:
        return {
            "question": self.question, "answer": self.text, "found": self.found,
            "citations": [c.to_dict() for c in self.citations], "related": [c.to_dict() for c in self.related],
            "table": [r.to_dict() for r in self.table], "figures": [list(f) for f in self.figures()],
            "searched": self.searched, "why": self.why,
        }


@dataclass
class _Candidate:
    hit: Hit
    rank: int
    sent_start: int  # offsets in the report text
    sent_end: int
    clause_start: int
    clause_end: int
    confidence: float  # what decides between answering and refusing
    score: float  # confidence plus tie-breaks: what ranks the candidates


class AnswerComposer:
    def __init__(self, searcher: HybridSearcher, top_k: int = 6, min_confidence: float = 0.45):
        if top_k < 1:
            raise ValueError(f"answer top_k must be >= 1, got {top_k!r}")
        if not 0 < min_confidence <= 1:
            raise ValueError(f"answer min_confidence must be in (0, 1], got {min_confidence!r}")
        self.searcher = searcher
        self.catalog = searcher.catalog
        self.top_k = top_k
        self.min_confidence = min_confidence
        self.reader = QuestionReader(get_tokenizer(), searcher.index.idf, searcher.index.df)
        self.facts = FactFinder(searcher, self.reader, min_confidence)

    # ---- follow-ups ---------------------------------------------------------------------------
    def follow_up(self, previous: str, question: str) -> str:
        """A follow-up question read in the light of the one before it (a reply in a chat). One
        that names no unit or no year takes the previous question's; one that asks nothing of its
        own ("那2022年呢？", "龙岗区呢？") is the previous question with the unit or year swapped.
        The result is a plain question, shown with the answer so the reading can be checked."""
        question = (question or "").strip()
        previous = (previous or "").strip()
        if not previous or not question:
            return question
        prev = self.catalog.resolve(previous)
        new = self.catalog.resolve(question)
        if new.by_stem and prev.orgs:  # 在龙岗政府在线…: the unit asked before, not every unit of 龙岗
            new = replace(new, orgs=(), report_ids=(), groups=())
        years = new.years or prev.years
        year_text = "".join(f"{y}年" for y in years)
        swap = _SWAP_ONLY.match(unicodedata.normalize("NFKC", question))
        what = swap["what"] if swap and not (NUMERIC_ASK.search(swap["what"]) or FACT_ASK.search(swap["what"])) else ""
        named = re.sub(r"^那么?|的$", "", without_years(what).strip())
        unit = re.sub(r"^那么?", "", "、".join(new.orgs)) or (named if looks_like_unit(named) else "")
        if not self.reader.terms(question, new) or (what and unit):
            rest = without_years(previous)
            for name in sorted(prev.orgs, key=len, reverse=True):
                rest = rest.replace(name, "")
            return f"{unit or '、'.join(prev.orgs)}{year_text}{rest.strip(' ，,、的')}"
        if (new.orgs or not prev.orgs) and (new.years or not prev.years):
            return question
        return f"{'' if new.orgs else '、'.join(prev.orgs)}{'' if new.years else year_text}{question}"

    def example_question(self, report: Report) -> str | None:
        """A question this report answers, to show people how to ask (the bot's /help): made from a
        figure of the report ("…出具法律意见书79件" -> "重点区域署2023年出具法律意见书多少件？") and
        kept only when answering it gives that figure back."""
        if not report.year:
            return None
        names = [a for a in report.aliases if 3 <= len(a) <= 8 and a in self.catalog.matcher.by_alias]
        # the shortest name that still says where (长寿区卫健委 rather than 卫健委)
        unit = min(names, key=lambda a: (len(a) < 4, len(a))) if names else report.org
        for m in _EXAMPLE_FIGURE.finditer(report.text[:_EXAMPLE_CHARS]):
            question = f"{unit}{report.year}年{m.group('what')}多少{m.group('measure')}？"
            answer = self.answer(question)
            if answer.found and m.group("figure") + m.group("measure") in answer.text:
                return question
        return None

    # ---- answering ----------------------------------------------------------------------------
    def answer(self, question: str, years=(), orgs=(), top_k: int | None = None, filters: Filters | None = None) -> Answer:
        """Answer `question`; years and units come from the question unless given (or `filters`
        is given whole, which skips resolving)."""
        question = (question or "").strip()
        if not question:
            raise ValueError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValueError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
        if filters is None:
            filters = self.catalog.resolve(question, years=years, orgs=orgs)
        if filters.unknown:
            return self._refuse_unknown(question, filters)
        text = unicodedata.normalize("NFKC", question)
        kind = self.catalog.units_of_kind(text, filters)
        comparison = read_comparison(text, max(len(filters.groups), len(filters.years), len(kind)))
        if comparison.kind == "rank":
            scope = kind or self.catalog.units_of_kind(text, filters, each=True) or None
            return self._answer_rank(question, filters, comparison, top_k, scope)
        if is_meta(question):
            return self._answer_meta(question, filters)
        if comparison.kind == "change":
            text = neutral_question(text)
        if len(filters.groups) >= 2:
            return self._answer_each(question, self._unit_parts(text, filters), filters, top_k, comparison)
        if len(filters.years) >= 2 and (_EACH_YEAR.search(text) or comparison.kind):
            parts = [(text, replace(filters, years=(year,))) for year in _in_order(filters.years, text)]
            return self._answer_each(question, parts, filters, top_k, comparison)
        if kind:
            parts = [(text, replace(filters, report_ids=(r.id,), orgs=(r.org,), groups=((r.org, (r.id,)),))) for r in kind]
            return self._answer_each(question, parts, filters, top_k, comparison)
        twins = self._same_unit_and_year(filters)
        if twins:
            parts = [(text, replace(filters, report_ids=(r.id,), groups=((r.org, (r.id,)),))) for r in twins]
            return self._answer_each(question, parts, filters, top_k, comparison, twins=True)
        return self._answer_one(question, filters, top_k)

    def _answer_rank(self, question: str, filters: Filters, comparison: Comparison, top_k: int | None,
                     scope: list[Report] | None = None) -> Answer:
        """哪个单位…最多: the units whose reports give the figure (found through the facts table,
        at most RANK_MAX_UNITS of them), each answered from its own report as a one-unit question,
        then ranked when their figures are comparable (else the answer says why not and lists them).
        `scope`: the units of the kind the question names (哪个区司法局…), else every unit."""
        unit_question = rank_question(unicodedata.normalize("NFKC", question))
        if scope is not None:
            filters = replace(filters, report_ids=tuple(r.id for r in scope), orgs=tuple(dict.fromkeys(r.org for r in scope)))
        scope = self.catalog.reports_of(filters)
        searched = {"years": list(filters.years), "orgs": list(filters.orgs), "reports": len(scope)}
        if not scope:
            return self._refuse(question, filters, searched, self._no_reports_reason(filters), related=False)
        listed = self.facts.find(unit_question, filters=filters, limit=RANK_MAX_UNITS * RANK_FACTS_PER_UNIT)
        report_ids = list(dict.fromkeys(f.report.id for f in listed.facts))[:RANK_MAX_UNITS]
        parts = [(unit_question, Filters(years=filters.years, report_ids=(rid,), orgs=(self.catalog.by_id[rid].org,),
                                         groups=((self.catalog.by_id[rid].org, (rid,)),)))
                 for rid in report_ids]
        answers = [(part, sub, self._answer_one(part, sub, top_k)) for part, sub in parts]
        answers = [x for x in answers if x[2].found]
        if not answers:
            return self._refuse(question, filters, searched, "没有一份报告说到这个数字")
        rows = [self._row(part, sub, a, 0, sub.orgs[0]) for part, sub, a in answers]
        why = comparable(rows) if all(r.fact for r in rows) else "有的数字无法读出"
        order = list(range(len(rows)))
        if not why:
            order.sort(key=lambda i: rows[i].number if comparison.most else -rows[i].number, reverse=True)
        citations, table = [], []
        for i in order:
            for c in answers[i][2].citations:
                citations.append(replace(c, n=len(citations) + 1))
            first = len(citations) - len(answers[i][2].citations)
            table.append(replace(rows[i], citation=first + 1))
        silent = len(scope) - len(rows)
        rest = f"另有{silent}份报告没有说到这个数字。" if silent else ""
        listing = "\n".join(f"{n + 1}. {r.unit}{year_label(r.year)}：{r.value} [{r.citation}]" for n, r in enumerate(table))
        if len(table) < 2:
            why = f"只有{len(table)}个单位的报告说到这个数字，无从比较"
        if why:
            lead = f"未找到：{why}；各单位的数字如下：\n{listing}\n{rest}".rstrip()
            return Answer(question=question, text=lead, found=False, citations=tuple(citations), searched=searched,
                          why=why, table=tuple(table))
        top = table[0]
        ties = [r for r in table if r.number == top.number]
        word = "最多" if comparison.most else "最少"
        wording = f"（{top.wording}）" if top.wording else ""
        head = "、".join(f"{r.unit}（{r.value}）" for r in ties)
        lead = f"{'并列' if len(ties) > 1 else ''}{word}的是{head}{wording}。比较了{len(table)}个单位：\n{listing}\n{rest}".rstrip()
        return Answer(question=question, text=lead, found=True, citations=tuple(citations), searched=searched,
                      why=f"ranked {len(table)} units", table=tuple(table))

    def _same_unit_and_year(self, filters: Filters) -> list[Report]:
        """Two or more reports of the one unit and year a question names (a draft and a final
        version, a page and its attached file): each is answered, and their figures compared."""
        if len(filters.groups) != 1:
            return []
        reports = self.catalog.reports_of(filters)
        if len(reports) < 2 or len({(r.org, r.year) for r in reports}) != 1:
            return []
        return reports

    def _answer_one(self, question: str, filters: Filters, top_k: int | None = None) -> Answer:
        result = self.searcher.search(question, k=top_k or self.top_k, filters=filters)
        searched = self._searched(result)
        if not result.reports:
            return self._refuse(question, filters, searched, self._no_reports_reason(filters))
        asks = self.reader.asks(question, filters)
        if not asks[0].terms:  # "局", "2024", "重点区域署有多少件": nothing asked to look for
            return self._refuse(question, filters, searched, "问题里没有要查找的内容（请说明要问的事项）", related=False)
        first = self._best(result, asks[0])
        if first is None or first.confidence < self.min_confidence:
            reason = "报告中没有找到相关的表述" if first is None or first.confidence <= 0 else "没有一段文字同时说到问题里的要点"
            return self._refuse(question, filters, searched, reason, result.hits)
        if asks[0].how:
            return self._compose_how(question, first, asks[0], filters, searched)
        chosen = [first]
        for ask in asks[1:]:
            follow = self._follow_up(result, first, ask)
            if follow is None:
                return self._refuse(question, filters, searched, f"问题的一部分（{ask.text.strip()}）没有找到对应的数字", result.hits)
            chosen.append(follow)
        return self._compose(question, chosen, filters, searched)

    def _answer_each(self, question: str, parts: list[tuple[str, Filters]], filters: Filters, top_k: int | None,
                     comparison: Comparison = SIDE_BY_SIDE, twins: bool = False) -> Answer:
        """A question about several units ("公义镇2021年…几次，五常街道2024年…多少份？", "长寿卫健委和
        上城教育局各办了多少件？"), years ("2023年和2024年…分别排第几？", "2024年比2023年多审了多少份？")
        or reports of one unit and year (`twins`): each part is answered from its own unit's and
        year's reports alone, and its figure put in the table (未提及 where the part has none, never
        another part's). A change or total is computed over the cited figures when they are
        comparable; reports of one unit and year that disagree are said to."""
        answers = [self._answer_one(part, sub, top_k) for part, sub in parts]
        # reports of one unit and year answer one question: a figure one of them gives answers it
        found = any(a.found for a in answers) if twins else all(a.found for a in answers)
        citations, related, rows, lines = [], [], [], []
        for (part, sub), a in zip(parts, answers, strict=True):
            first = len(citations)
            for c in a.citations:
                citations.append(replace(c, n=len(citations) + 1))
            related += a.related
            label = self._part_label(sub, twins)
            if a.found:
                row = self._row(part, sub, a, first, label)
                rows.append(row)
                lines.append(a.text if not twins else f"[{self.catalog.by_id[sub.report_ids[0]].source}] {a.text}")
            else:
                years = sub.years or filters.years
                rows += [TableRow(label, y, MISSING) for y in (years or (None,))]
                lines.append(f"{label}{''.join(f'{y}年' for y in years)}：{MISSING}（{a.why}）")
        notes = self._comparison_notes(rows, comparison, twins)
        searched = {"years": list(filters.years), "orgs": list(filters.orgs), "reports": sum(a.searched.get("reports", 0) for a in answers)}
        lead = "\n".join(notes[:1] + lines + notes[1:]) if twins else "\n".join(lines + notes)
        if not found:
            missing = "、".join(r.unit + (f"{r.year}年" if r.year else "") for r in rows if r.value == MISSING)
            lead = f"未找到：问题问到的报告中，{missing}的报告没有能回答的内容；各部分的结果如下：\n{lead}"
        return Answer(question=question, text=lead, found=found, citations=tuple(citations), related=tuple(related),
                      searched=searched, why="answered unit by unit", table=tuple(rows))

    def _part_label(self, sub: Filters, twins: bool) -> str:
        """How a part's unit is named in its row: the unit as asked; with its report's file when two
        reports of one unit and year are compared."""
        if twins:
            report = self.catalog.by_id[sub.report_ids[0]]
            return f"{report.org}（{report.source}）"
        return sub.orgs[0] if sub.orgs else "".join(f"{y}年" for y in sub.years)

    def _row(self, part: str, sub: Filters, answer: Answer, first: int, label: str) -> TableRow:
        """The table row of a part's answer: the figure of its answering clause that is of the kind
        asked (the measure word asked first), read as the facts table reads figures."""
        ask = self.reader.asks(part, sub)[0]
        best = None
        for c in answer.citations:
            if not c.mark:
                continue
            report = self._report(c.report_id)
            lo, hi = c.start + c.mark[0], c.start + c.mark[1]
            for fact in span_facts(report.id, report.text, c.start, c.end):
                if lo <= fact.start and fact.end <= hi and kind_asked(ask, fact):
                    key = (measure_agrees(ask, fact), -fact.start)
                    if best is None or key > best[0]:
                        best = (key, fact, c)
            if best:
                break
        if best is None:  # no figure of the kind asked (a fact: 哪个指标排第一): the answer's words
            c = answer.citations[0]
            return TableRow(label if sub.orgs else c.org, c.year, answer.text.split("：", 1)[-1].rstrip("。"), "", first + c.n)
        _, fact, c = best
        return TableRow(label if sub.orgs else c.org, c.year, fact.text, fact.unit, first + c.n, fact.wording, fact)

    @staticmethod
    def _comparison_notes(rows: list[TableRow], comparison: Comparison, twins: bool) -> list[str]:
        """What the figures say together: the change or total asked (its arithmetic shown, or why it
        cannot be computed), whether two reports of one unit and year agree, and the reports'
        different wordings of one measure."""
        figures = [r for r in rows if r.fact is not None]
        notes = []
        if twins and len(figures) >= 2:
            values = {(r.number, r.measure_base) for r in figures}
            notes.append("两份报告数字不一致：" if len(values) > 1 else "两份报告数字一致：")
        if comparison.kind in ("change", "total") and len(figures) == len(rows) >= 2:
            why = comparable(figures)
            if why:
                notes.append(f"不能直接{'相减' if comparison.kind == 'change' else '相加'}：{why}。")
            elif comparison.kind == "change":
                a, b = figures[0], figures[1]
                d, arithmetic = difference(a, b)
                more = "多" if d >= 0 else "少"
                notes.append(f"{_row_name(a)}比{_row_name(b)}{more}{shown(abs(d))}{a.measure_base}（{arithmetic}）。")
            else:
                _, arithmetic = total(figures)
                notes.append(f"合计：{arithmetic}。")
        wordings = {r.wording for r in figures if r.wording}
        if len(wordings) > 1 and not twins:
            notes.append("各报告的说法：" + "；".join(f"{r.unit}{year_label(r.year)}「{r.wording}」" for r in figures if r.wording) + "。")
        return notes

    def _unit_parts(self, question: str, filters: Filters) -> list[tuple[str, Filters]]:
        """One question per unit named: the text from the unit's name to the next unit's. A part that
        asks nothing of its own ("长寿卫健委2022年和…各办了多少件审批？", "钱塘区的行政复议案件和天河区的
        个体工商户，各同比增长了多少？") takes the asking clause of the next part that has one."""
        text = unicodedata.normalize("NFKC", question)
        starts = sorted((text.find(name) if name in text else len(text), name, ids) for name, ids in filters.groups)
        lead = text[: starts[0][0]].strip(" ，,:：")
        out = []
        topics, asking = [], []
        for i, (at, name, _) in enumerate(starts):
            piece = text[at : (starts[i + 1][0] if i + 1 < len(starts) else len(text))]
            topic = without_years(piece.replace(name, "", 1)).strip(" 和与及、，,；;的")
            topics.append((topic, self.catalog.resolve(piece).years or filters.years))
            clause = next((c for c in reversed(re.split(r"[，,；;]", topic)) if NUMERIC_ASK.search(c) or FACT_ASK.search(c)), "")
            asking.append(re.sub(r"^[各都分别]+", "", clause.strip()))
        for i, ((topic, years), (_, name, ids)) in enumerate(zip(topics, starts, strict=True)):
            if not asking[i]:
                borrowed = next((a for a in asking[i + 1 :] if a), "")
                topic = f"{topic}{borrowed}"
            year_text = "".join(f"{y}年" for y in years if str(y) not in lead)
            sub = Filters(years=tuple(years), report_ids=tuple(ids), orgs=(name,), groups=((name, tuple(ids)),))
            out.append((f"{lead}{name}{year_text}{topic}", sub))
        return out

    def _searched(self, result: SearchResult) -> dict:
        return {"years": list(result.filters.years), "orgs": list(result.filters.orgs), "reports": len(result.reports)}

    def _candidates(self, result: SearchResult, ask: Ask) -> list[_Candidate]:
        out: list[_Candidate] = []
        for rank, hit in enumerate(result.hits):
            p = hit.passage
            report = self.searcher.index.report_by_id[p.report_id]
            unit_context = normalise(" ".join((report.org, report.region, *report.aliases)))
            section = normalise(p.section)
            plans = bool(_NOT_DONE_SECTION.search(p.section))
            passage_text = normalise(p.text)
            for s0, s1 in split_sentences(p.text):
                sentence = p.text[s0:s1]
                if ask.numeric and not _ANY_FIGURE.search(sentence):
                    continue  # no figure to answer with: not worth reading
                if ask.numeric:  # figures are about what the sentence says, not the documents it names
                    said, names = _outside_names(sentence)
                else:
                    said, names = normalise(sentence), ""
                context = said + "|" + section + "|" + unit_context
                cov = coverage(ask.terms, context, names)
                if ask.numeric and any(t.weight >= ELSEWHERE_MIN_WEIGHT and _unsaid([t], context) and not _unsaid([t], passage_text)
                                       for t in ask.terms):
                    cov -= ELSEWHERE
                clauses = split_clauses(sentence)
                # words asked that the sentence, or one of its clauses, gives a sibling of instead (科级 for
                # 处级, 来文 for 发文): a clause that does not say them gives the sibling's figure
                contrasted = None  # found once the sentence has a clause with a figure
                in_parts = False  # after "其中…" every clause of the sentence is a part of the figure before
                for c0, c1 in clauses:
                    clause = sentence[c0:c1]
                    plain_clause = normalise(clause)
                    in_parts = in_parts or bool(_PART.match(clause))
                    quantities = [q for q in find_quantities(clause) if q.value not in ask.stated]
                    agree = 0.0
                    if ask.numeric:
                        if not quantities:
                            continue
                        if ask.rate and not any(q.unit in ("%", "‰") for q in quantities) and "率" not in clause:
                            continue
                        if ask.measure_kind in ("ordinal", "money", "duration") and not any(
                                q.kind == ask.measure_kind for q in quantities):
                            continue
                        if ask.measure_words and not (ask.rate or ask.change) and all(q.kind == "percent" for q in quantities):
                            continue  # "办了多少件": a rate is no count of anything
                        if ask.measure_words:
                            agree = MEASURE_AGREES if any({q.unit, q.measure} & ask.measure_words for q in quantities) else -MEASURE_MISMATCH
                        elif not (ask.rate or ask.change) and all(q.kind == "percent" for q in quantities):
                            agree = -MEASURE_MISMATCH  # "有多少" asks a count; a rate answers "多少%" or a change
                    if ask.numeric:
                        own = coverage(ask.terms, *_outside_names(clause))
                        if not ask.within and in_parts:
                            agree -= PART_OF_FIGURE  # "其中民事诉讼50起,行政诉讼14起": parts, not the figure asked
                    else:
                        # a fact: the clause holds the words around the question word
                        own = coverage(ask.anchors or ask.terms, plain_clause)
                        if any(o in clause for o in ask.ordinals):
                            agree += FACT_ORDINAL  # 全市第一个区级平台: the clause that says 第一个
                        if _TOPIC.match(clause):
                            agree -= FACT_TOPIC  # "二是落实法律顾问制度": the topic, not what was done
                    if contrasted is None:
                        contrasted = self._contrasted(ask, sentence, context, [sentence[a:b] for a, b in clauses]) if ask.numeric else set()
                    if contrasted and _unsaid([t for t in ask.terms if t.word in contrasted], plain_clause):
                        agree -= CONTRAST
                    if plans:
                        agree -= NOT_DONE
                    if ask.numeric and result.filters.years:
                        year = _figure_year(sentence, c0, c1)
                        if year is not None and year not in result.filters.years:
                            agree -= OTHER_YEAR
                    confidence = SENTENCE_SHARE * cov + CLAUSE_SHARE * own + agree
                    score = confidence + RANK_TIE_BREAK / (1 + rank)
                    start = p.start + s0
                    out.append(_Candidate(hit, rank, start, p.start + s1, start + c0, start + c1, confidence, score))
        return out

    def _contrasted(self, ask: Ask, sentence: str, context: str, clauses: list[str]) -> set[str]:
        found = self.reader.contrasts(_unsaid(ask.terms, context), ask, sentence)
        for clause in clauses:
            found |= self.reader.contrasts(_unsaid(ask.terms, normalise(clause)), ask, clause)
        return found

    def _best(self, result: SearchResult, ask: Ask) -> _Candidate | None:
        cands = self._candidates(result, ask)
        if not cands:
            return None
        cands = self._by_meaning(cands, ask)
        return max(cands, key=lambda c: (c.score, -c.rank, -c.clause_start))

    def _by_meaning(self, cands: list[_Candidate], ask: Ask) -> list[_Candidate]:
        """Adds the semantic term of the confidence: the configured embedder's similarity of the
        ask and the clause, SEMANTIC_WEIGHT * (similarity - SEMANTIC_BASE). It is computed only for
        the few candidates it could change a decision for (rivals within the spread of similarities
        seen between rival clauses, when the best is within its range of the threshold or has such a
        rival): elsewhere it does not move a figure, and an embedding costs milliseconds."""
        cands = sorted(cands, key=lambda c: (-c.score, c.rank, c.clause_start))
        best = cands[0]
        reach = SEMANTIC_WEIGHT * SEMANTIC_SPREAD
        near_threshold = self.min_confidence - SEMANTIC_WEIGHT * (1 - SEMANTIC_BASE) <= best.confidence < (
            self.min_confidence + SEMANTIC_WEIGHT * SEMANTIC_BASE)
        rivals = [c for c in cands[1:SEMANTIC_MAX_CLAUSES] if c.score >= best.score - reach]
        # a fact's answer is often the clause beside the one that restates the question (…攻防演练,
        # 获得…荣誉称号): by meaning the restatement wins, so only figures are weighed this way
        if not ask.numeric or not ask.plain or not (near_threshold or rivals):
            return cands
        chosen = [best] + rivals
        texts = [self._clause_text(c) for c in chosen]
        embedder = self.searcher.embedder
        if embedder.symmetric:  # one model call for the ask and the clauses (~4 ms fewer with USE)
            vectors = embedder.embed_documents([ask.plain] + texts)
            sims = vectors[1:] @ vectors[0]
        else:
            sims = embedder.embed_documents(texts) @ embedder.embed_query(ask.plain)
        for c, sim in zip(chosen, sims, strict=True):
            shift = SEMANTIC_WEIGHT * (float(sim) - SEMANTIC_BASE)
            c.confidence += shift
            c.score += shift
        return cands

    def _clause_text(self, c: _Candidate) -> str:
        return self._report(c.hit.passage.report_id).text[c.clause_start : c.clause_end]

    def _follow_up(self, result: SearchResult, first: _Candidate, ask: Ask) -> _Candidate | None:
        """The second ask of a two-ask question ('…，化解了多少？'): a clause with a number that
        names the ask's terms, preferring the sentence of the first answer."""
        best = None
        for c in self._candidates(result, ask):
            clause = self.searcher.index.report_by_id[c.hit.passage.report_id].text[c.clause_start : c.clause_end]
            if (c.hit.passage.id, c.clause_start) == (first.hit.passage.id, first.clause_start) and not ask.measure_words:
                continue  # the first answer's clause answers a second ask only by a figure of its own measure word
            own = coverage(ask.terms, normalise(clause)) if ask.terms else 0.0
            same_sentence = c.hit.passage.id == first.hit.passage.id and c.sent_start == first.sent_start
            # "…，占比多少？": a share of the figure just given, in its sentence, whatever words it uses
            share_of_first = ask.rate and same_sentence and all(RATE_ASK.search(t.word) for t in ask.terms)
            if ask.terms and own < FOLLOW_MIN_COVERAGE and not share_of_first:
                continue
            if ask.within and not (same_sentence and c.clause_start > first.clause_start):
                continue  # "其中…": a part of the first figure, said after it
            if ask.measure_words and not any({q.unit, q.measure} & ask.measure_words for q in find_quantities(clause)):
                continue  # "…多少次、多少人次": the figure with the measure word asked
            key = (same_sentence, own, c.clause_start > first.clause_start, -abs(c.clause_start - first.clause_end))
            if best is None or key > best[0]:
                best = (key, c)
        return best[1] if best else None

    # ---- output ------------------------------------------------------------------------------
    def _report(self, report_id: str) -> Report:
        return self.searcher.index.report_by_id[report_id]

    @staticmethod
    def unit_label(report: Report, asked: tuple[str, ...] = ()) -> str:
        short = next((a for a in asked if a in report.aliases), None)
        if short is None:
            shorts = [a for a in report.aliases if 3 <= len(a) < len(report.org)]
            short = min(shorts, key=len) if shorts else None
        return f"{report.org}（{short}）" if short and short != report.org else report.org

    def _citation(self, n: int, hit: Hit, start: int, end: int, mark: tuple[int, int] | None = None) -> Citation:
        report = self._report(hit.passage.report_id)
        return Citation(n=n, source=report.source, title=report.title, org=report.org, year=report.year,
                        section=hit.passage.section, excerpt=report.text[start:end], start=start, end=end,
                        score=hit.score, mark=(mark[0] - start, mark[1] - start) if mark else None, report_id=report.id,
                        url=report.url, page=report.page_at(start))

    def _compose(self, question: str, chosen: list[_Candidate], filters: Filters, searched: dict) -> Answer:
        first = chosen[0]
        report = self._report(first.hit.passage.report_id)
        text = report.text
        same = all(c.hit.passage.id == first.hit.passage.id and c.sent_start == first.sent_start for c in chosen)
        if same:
            lo, hi = min(c.clause_start for c in chosen), max(c.clause_end for c in chosen)
            body = text[lo:hi]
            marks = [(lo, hi)]
        else:
            body = "；".join(text[c.clause_start : c.clause_end] for c in chosen)
            marks = [(c.clause_start, c.clause_end) for c in chosen]
        body = body.strip().rstrip("，,。；;：:")
        citations = []
        seen = set()
        for c, mark in zip(chosen if not same else [first], marks, strict=True):
            key = (c.hit.passage.report_id, c.sent_start)
            if key in seen:
                continue
            seen.add(key)
            start, end = c.sent_start, c.sent_end
            if end - start < SHORT_SENTENCE:  # a very short sentence: show the passage around it
                start, end = c.hit.passage.start, c.hit.passage.end
            citations.append(self._citation(len(citations) + 1, c.hit, start, end, mark))
        missing = number_values(body) - set().union(*(number_values(c.excerpt) for c in citations))
        if missing:  # cannot happen for extractive answers; checked because a wrong number is worst
            return self._refuse(question, filters, searched, "答案中的数字无法在引文中核对", [first.hit])
        lead = f"{self.unit_label(report, filters.orgs)}{year_label(report.year)}：{body}。"
        return Answer(question=question, text=lead, found=True, citations=tuple(citations), searched=searched,
                      why=f"answer taken from {report.source}, confidence {first.confidence:.2f}")

    def _compose_how(self, question: str, first: _Candidate, ask: Ask, filters: Filters, searched: dict) -> Answer:
        """A how / what-measures question: the answering sentence and the passage's next best ones
        (up to HOW_SENTENCES, in the report's order), each cited."""
        p = first.hit.passage
        report = self._report(p.report_id)
        scored = []
        for s0, s1 in split_sentences(p.text):
            start, end = p.start + s0, p.start + s1
            if start == first.sent_start:
                continue
            cov = coverage(ask.terms, normalise(report.text[start:end]))
            if cov >= HOW_MIN_COVERAGE:
                scored.append((cov, start, end))
        spans = sorted([(first.sent_start, first.sent_end)] + [(a, b) for _, a, b in sorted(scored, reverse=True)[: HOW_SENTENCES - 1]])
        citations = [self._citation(n + 1, first.hit, a, b, (a, b)) for n, (a, b) in enumerate(spans)]
        body = "".join(report.text[a:b].strip() for a, b in spans).rstrip("，,；;。")
        lead = f"{self.unit_label(report, filters.orgs)}{year_label(report.year)}：{body}。"
        return Answer(question=question, text=lead, found=True, citations=tuple(citations), searched=searched,
                      why=f"answer taken from {report.source} ({len(spans)} sentences), confidence {first.confidence:.2f}")

    def _no_reports_reason(self, filters: Filters) -> str:
        index = self.searcher.index
        units = [r for r in index.reports if r.id in filters.report_ids] if filters.orgs else []
        if units and filters.years:
            have = sorted({r.year for r in units if r.year})
            return f"已收录的报告中没有{'、'.join(filters.orgs)}{'、'.join(map(str, filters.years))}年的报告（已收录该单位{'、'.join(map(str, have))}年的报告）"
        if filters.orgs and not units:
            return f"已收录的报告中没有{'、'.join(filters.orgs)}的报告"
        if filters.years:
            have = sorted({r.year for r in index.reports if r.year})
            return f"已收录的报告中没有{'、'.join(map(str, filters.years))}年的报告（已收录：{'、'.join(map(str, have)) or '无'}）"
        return "没有符合条件的报告"

    def _refuse_unknown(self, question: str, filters: Filters) -> Answer:
        """A unit the question names is not indexed: say which, and which indexed units are closest."""
        parts = []
        for name in filters.unknown:
            near = self.catalog.closest(name)
            parts.append(f"{name}（已收录的相近单位：{'、'.join(near)}）" if near else name)
        searched = {"years": list(filters.years), "orgs": list(filters.orgs), "reports": 0}
        return self._refuse(question, filters, searched, f"没有收录{'、'.join(parts)}的报告", hits=[], related=False)

    def _refuse(self, question: str, filters: Filters, searched: dict, reason: str, hits: list[Hit] | None = None,
                related: bool = True) -> Answer:
        if not hits and related:
            relaxed = Filters(report_ids=filters.report_ids, orgs=filters.orgs) if filters.orgs else Filters()
            hits = self.searcher.search(question, k=3, filters=relaxed).hits if self.searcher.index.size else []
        near = []
        for hit in (hits or [])[:3]:
            near.append(self._citation(len(near) + 1, hit, hit.passage.start, hit.passage.end))
        scope = []
        if filters.orgs:
            scope.append("、".join(filters.orgs))
        if filters.years:
            scope.append("、".join(f"{y}年" for y in filters.years))
        where = "".join(scope) or "全部"
        text = f"未找到：在{where}的报告中（检索了{searched.get('reports', 0)}份报告）没有找到能回答这个问题的内容：{reason}。"
        return Answer(question=question, text=text, found=False, related=tuple(near), searched=searched, why=reason)

    def _answer_meta(self, question: str, filters: Filters) -> Answer:
        """Questions about the reports themselves: which there are (of a year, a unit, a kind of unit),
        their unit, year, date and title. Each report is cited by the line the asked field was read
        from (a header field, the title, the opening sentence, the signature)."""
        reports = self.catalog.reports_of(filters)
        kinds = asked_unit_kinds(question)
        if kinds:
            reports = [r for r in reports if any(k.search(r.org) for k in kinds)]
        searched = {"years": list(filters.years), "orgs": list(filters.orgs), "reports": len(reports)}
        if not reports:
            return self._refuse(question, filters, searched, self._no_reports_reason(filters), related=False)
        field = next((f for f, pattern in _META_FIELDS if pattern.search(question)), "org")
        lines, citations, table = [], [], []
        for report in reports:
            spans = {name: (a, b) for name, a, b in report.spans}
            date = f"，发布于{report.published}" if report.published else ""
            line = f"{report.org}{year_label(report.year)}的报告（{report.title}{date}）"
            start, end = spans.get(field) or spans.get("title") or (0, report.text.find("\n") % (len(report.text) + 1))
            if field == "published" and (delivered := _DELIVERED.search(report.text[:_HEAD_CHARS])):
                # a report to a people's congress: the day and the session it was delivered at
                line += f"，{delivered.group(0).strip('（）()')}"
                start, end = delivered.span()
            lines.append(line)
            citations.append(Citation(n=len(citations) + 1, source=report.source, title=report.title, org=report.org,
                                      year=report.year, section="", excerpt=report.text[start:end], start=start, end=end,
                                      score=1.0, report_id=report.id, url=report.url, page=report.page_at(start)))
            value = {"published": report.published or MISSING, "year": year_label(report.year)}.get(field, report.title)
            table.append(TableRow(report.org, report.year, value, citation=len(citations)))
        count = f"共{len(reports)}份：" if len(reports) > 1 else ""
        return Answer(question=question, text=count + "；".join(lines) + "。", found=True, citations=tuple(citations),
                      searched=searched, why=f"answered from the reports' metadata ({field})",
                      table=tuple(table) if len(table) > 1 else ())
