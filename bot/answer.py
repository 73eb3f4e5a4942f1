"""Extractive answers: the clause of the best passages that answers, with numbered citations.
A wrong number is worse than none: when no sentence of the asked unit and year covers the
question's key terms, the answer says the reports do not state it and shows what is related."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field

from retriever.search import HybridSearcher, SearchResult
from retriever.tokenize import STOPWORDS, get_tokenizer
from retriever.types import Filters, Hit, Report

from .numbers import MEASURE_WORDS, find_quantities, number_values

MAX_QUESTION_CHARS = 500

_NUMERIC_ASK = re.compile(r"多少|几[个次名项人件份条篇场宗张家所期批天年]?|比例|比率|占比|百分之几|百分比|[^\s]率(?:是|为|达|有)?(?:多少|几)|数量|多大|多长|多久|金额")
_RATE_ASK = re.compile(r"率|比例|占比|百分")
_FACT_ASK = re.compile(r"哪个|哪些|哪家|哪里|哪项|哪一|什么|谁|何[种处地时]|怎样|如何|是否")
_META_ASK = re.compile(r"哪个单位|哪些单位|哪家单位|什么单位|谁的|哪一年|哪年|年份|什么时候|何时|哪天|发布|日期|标题|多少份报告|几份报告|哪些报告|什么报告|报告.*(?:是哪|有哪|有几|有多少)")
_ASK_SPLIT = re.compile(r"[，,；;]|以及|并且|同时|另外")
_MONTHS = re.compile(r"\d{1,2}\s*(?:到|至|-|—|~|－)\s*\d{1,2}\s*月份?|\d{1,2}\s*月份?|(?:19|20)\d{2}\s*年度?")
_QUESTION_NOISE = ("今年", "去年", "本年", "本年度", "年度", "全年度", "一共", "总共", "共计", "截至", "截止", "期间", "分别",
                   "其中", "情况", "报告", "方面", "相关")
_YEAR_MENTION = re.compile(r"(?<!\d)(?:19|20)\d{2}\s*年度?")
# "那2022年呢？", "龙岗区呢": a follow-up that only swaps the unit or the year
_SWAP_ONLY = re.compile(r"^(?:那么?|还有|换成)?\s*(?P<what>.{0,40}?)\s*(?:的情况|的数字|的)?\s*(?:呢|怎么样|如何)?\s*[？?。.!！]*$")
_UNIT_NAME = re.compile(r"[\u4e00-\u9fff]{1,20}(?:街道办事处|委员会|办公室|管委会|工作部|检察院|法院|街道|公司|中心|局|署|委|办|厅|镇|乡|区|县|市)")
_CONTEXT_DROP = re.compile(r"[、“”‘’《》\"'「」『』\s·]")
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*")
_CLAUSE = re.compile(r"[^，,。！？!?；;：:\n]+")


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    title: str
    org: str
    year: int
    section: str
    excerpt: str  # exact report text
    start: int  # offsets of the excerpt in the report text
    end: int
    score: float
    mark: tuple[int, int] | None = None  # the answering clause, as offsets within the excerpt

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mark"] = list(self.mark) if self.mark else None
        return d


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    found: bool
    citations: tuple[Citation, ...] = ()
    related: tuple[Citation, ...] = ()  # nearest excerpts when nothing answers
    searched: dict = field(default_factory=dict)  # years, orgs, reports
    why: str = ""

    def to_dict(self) -> dict:
        return {
            "question": self.question, "answer": self.text, "found": self.found,
            "citations": [c.to_dict() for c in self.citations], "related": [c.to_dict() for c in self.related],
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
    coverage: float
    score: float


def normalise(text: str) -> str:
    return _CONTEXT_DROP.sub("", unicodedata.normalize("NFKC", text)).lower()


class AnswerComposer:
    def __init__(self, searcher: HybridSearcher, top_k: int = 6, min_coverage: float = 0.55):
        if top_k < 1:
            raise ValueError(f"answer top_k must be >= 1, got {top_k!r}")
        if not 0 < min_coverage <= 1:
            raise ValueError(f"answer min_coverage must be in (0, 1], got {min_coverage!r}")
        self.searcher = searcher
        self.top_k = top_k
        self.min_coverage = min_coverage
        self.tokenizer = get_tokenizer()

    # ---- question analysis -------------------------------------------------------------------
    def key_terms(self, question: str, filters: Filters) -> list[tuple[str, float]]:
        """The question's content words with IDF weights; unit names, years, months and
        question words removed."""
        text = unicodedata.normalize("NFKC", question)
        for name in sorted(filters.orgs, key=len, reverse=True):
            text = text.replace(name, " ")
        text = _MONTHS.sub(" ", text)
        text = re.sub(r"(多少|几)\s*(" + "|".join(map(re.escape, MEASURE_WORDS)) + ")", " ", text)
        for noise in _QUESTION_NOISE:
            text = text.replace(noise, " ")
        terms: dict[str, float] = {}
        for word in self.tokenizer.words(text):
            if word in STOPWORDS or not re.search(r"[\u4e00-\u9fffA-Za-z0-9]", word):
                continue
            if len(word) == 1 and word in "了过着吗呢啊吧是有个次年":
                continue
            terms[word] = max(self.searcher.index.idf(word), 0.1)
        return list(terms.items())

    @staticmethod
    def coverage(terms: list[tuple[str, float]], context: str) -> float:
        if not terms:
            return 0.0
        total = got = 0.0
        for word, weight in terms:
            total += weight
            w = normalise(word)
            if w in context:
                got += weight
            elif len(w) >= 3:
                bigrams = [w[i : i + 2] for i in range(len(w) - 1)]
                share = sum(b in context for b in bigrams) / len(bigrams)
                if share >= 0.5:
                    got += weight * share * 0.8
        return got / total

    def follow_up(self, previous: str, question: str) -> str:
        """A follow-up question read in the light of the one before it (a reply in a chat). One
        that names no unit or no year takes the previous question's; one that asks nothing of its
        own ("那2022年呢？", "龙岗区呢？") is the previous question with the unit or year swapped.
        The result is a plain question, shown with the answer so the reading can be checked."""
        question = (question or "").strip()
        previous = (previous or "").strip()
        if not previous or not question:
            return question
        prev = self.searcher.catalog.resolve(previous)
        new = self.searcher.catalog.resolve(question)
        years = new.years or prev.years
        year_text = "".join(f"{y}年" for y in years)
        swap = _SWAP_ONLY.match(unicodedata.normalize("NFKC", question))
        what = swap["what"] if swap and not (_NUMERIC_ASK.search(swap["what"]) or _FACT_ASK.search(swap["what"])) else ""
        named = re.sub(r"^那么?|的$", "", _YEAR_MENTION.sub("", what).strip())
        unit = re.sub(r"^那么?", "", "、".join(new.orgs)) or (named if _UNIT_NAME.fullmatch(named) else "")
        if not self.key_terms(question, new) or (what and unit):
            rest = _YEAR_MENTION.sub("", previous)
            for name in sorted(prev.orgs, key=len, reverse=True):
                rest = rest.replace(name, "")
            return f"{unit or '、'.join(prev.orgs)}{year_text}{rest.strip(' ，,、的')}"
        if (new.orgs or not prev.orgs) and (new.years or not prev.years):
            return question
        return f"{'' if new.orgs else '、'.join(prev.orgs)}{'' if new.years else year_text}{question}"

    # ---- answering ---------------------------------------------------------------------------
    def answer(self, question: str, years=(), orgs=(), top_k: int | None = None, filters: Filters | None = None) -> Answer:
        """Answer `question`; years and units come from the question unless given (or `filters`
        is given whole, which skips parsing)."""
        question = (question or "").strip()
        if not question:
            raise ValueError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValueError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
        if filters is None:
            filters = self.searcher.catalog.resolve(question, years=years, orgs=orgs)
        if "报告" in question and _META_ASK.search(question):
            return self._answer_meta(question, filters)
        result = self.searcher.search(question, k=top_k or self.top_k, filters=filters)
        searched = self._searched(result)
        if not result.reports:
            return self._refuse(question, filters, searched, self._no_reports_reason(filters))
        terms = self.key_terms(question, filters)
        numeric = bool(_NUMERIC_ASK.search(question))
        asks = [a for a in _ASK_SPLIT.split(question) if a.strip()] if numeric else [question]
        asks = [a for a in asks if _NUMERIC_ASK.search(a)] if numeric else asks
        if len(asks) < 2:
            asks = [question]
        first = self._best(result, terms, numeric, question, asks[0] if len(asks) > 1 else question)
        if first is None or first.coverage < self.min_coverage:
            reason = "没有一段文字同时说到问题里的要点" if first is None or first.coverage > 0 else "报告中没有找到相关的表述"
            return self._refuse(question, filters, searched, reason, result.hits)
        chosen = [first]
        for ask in asks[1:]:
            follow = self._follow_up(result, first, ask, numeric, filters)
            if follow is None:
                return self._refuse(question, filters, searched, f"问题的一部分（{ask.strip()}）没有找到对应的数字", result.hits)
            chosen.append(follow)
        return self._compose(question, chosen, filters, searched)

    def _searched(self, result: SearchResult) -> dict:
        return {"years": list(result.filters.years), "orgs": list(result.filters.orgs), "reports": len(result.reports)}

    def _candidates(self, result: SearchResult, terms, numeric: bool, question: str, ask: str) -> list[_Candidate]:
        rate = bool(_RATE_ASK.search(ask))
        hinted = {m.group(1) for m in re.finditer(r"(?:多少|几)\s*(" + "|".join(map(re.escape, MEASURE_WORDS)) + ")", ask)}
        ask_terms = self.key_terms(ask, result.filters) if ask != question else terms
        wh_anchor = self._wh_anchors(question, result.filters) if not numeric else ("", "")
        out: list[_Candidate] = []
        for rank, hit in enumerate(result.hits):
            p = hit.passage
            report = self.searcher.index.report_by_id[p.report_id]
            unit_context = normalise(" ".join((report.org, report.region, *report.aliases)))
            section = normalise(p.section)
            for sm in _SENTENCE.finditer(p.text):
                sentence = sm.group(0)
                context = normalise(sentence) + "|" + section + "|" + unit_context
                cov = self.coverage(terms, context)
                for cm in _CLAUSE.finditer(sentence):
                    clause = cm.group(0)
                    quantities = find_quantities(clause)
                    if numeric:
                        if not quantities:
                            continue
                        if rate and not any(q.unit in ("%", "‰") for q in quantities) and "率" not in clause:
                            continue
                    clause_cov = self.coverage(ask_terms, normalise(clause))
                    score = 0.6 * cov + 0.4 * clause_cov + 0.03 / (1 + rank)
                    if numeric and any(q.unit in hinted for q in quantities):
                        score += 0.05
                    if not numeric and wh_anchor != ("", ""):
                        left, right = wh_anchor
                        nc = normalise(clause)
                        if left and right and left in nc and right in nc and nc.index(left) < nc.rindex(right):
                            score += 0.15
                        elif (left and left in nc) or (right and right in nc):
                            score += 0.05
                    s0 = p.start + sm.start()
                    out.append(_Candidate(hit, rank, s0, p.start + sm.end(), s0 + cm.start(), s0 + cm.end(), cov, score))
        return out

    def _wh_anchors(self, question: str, filters: Filters) -> tuple[str, str]:
        """The content words right before and after the question word: 依托[哪个]法治文化公园."""
        m = _FACT_ASK.search(question)
        if not m:
            return "", ""
        words_before = [w for w, _ in self.key_terms(question[: m.start()], filters)]
        words_after = [w for w, _ in self.key_terms(question[m.end() :], filters)]
        return (normalise(words_before[-1]) if words_before else "", normalise(words_after[0]) if words_after else "")

    def _best(self, result, terms, numeric, question, ask) -> _Candidate | None:
        cands = self._candidates(result, terms, numeric, question, ask)
        if not cands:
            return None
        return max(cands, key=lambda c: (c.score, -c.rank, -c.clause_start))

    def _follow_up(self, result, first: _Candidate, ask: str, numeric: bool, filters) -> _Candidate | None:
        """The second ask of a two-ask question ('…，化解了多少？'): a clause with a number that
        names the ask's terms, preferring the sentence of the first answer."""
        terms = self.key_terms(ask, filters)
        best = None
        for c in self._candidates(result, terms, numeric, ask, ask):
            if (c.hit.passage.id, c.clause_start) == (first.hit.passage.id, first.clause_start):
                continue
            clause = self.searcher.index.report_by_id[c.hit.passage.report_id].text[c.clause_start : c.clause_end]
            own = self.coverage(terms, normalise(clause)) if terms else 0.0
            if terms and own < 0.5:
                continue
            same_sentence = c.hit.passage.id == first.hit.passage.id and c.sent_start == first.sent_start
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
                        score=hit.score, mark=(mark[0] - start, mark[1] - start) if mark else None)

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
            if end - start < 40:  # a very short sentence: show the passage around it
                start, end = c.hit.passage.start, c.hit.passage.end
            citations.append(self._citation(len(citations) + 1, c.hit, start, end, mark))
        missing = number_values(body) - set().union(*(number_values(c.excerpt) for c in citations))
        if missing:  # cannot happen for extractive answers; checked because a wrong number is worst
            return self._refuse(question, filters, searched, "答案中的数字无法在引文中核对", [first.hit])
        lead = f"{self.unit_label(report, filters.orgs)}{report.year}年：{body}。"
        return Answer(question=question, text=lead, found=True, citations=tuple(citations), searched=searched,
                      why=f"answer taken from {report.source}, coverage of the question's key terms {first.coverage:.2f}")

    def _no_reports_reason(self, filters: Filters) -> str:
        index = self.searcher.index
        units = [r for r in index.reports if r.id in filters.report_ids] if filters.orgs else []
        if units and filters.years:
            have = sorted({r.year for r in units})
            return f"已收录的报告中没有{'、'.join(filters.orgs)}{'、'.join(map(str, filters.years))}年的报告（已收录该单位{'、'.join(map(str, have))}年的报告）"
        if filters.orgs and not units:
            return f"已收录的报告中没有{'、'.join(filters.orgs)}的报告"
        if filters.years:
            have = sorted({r.year for r in index.reports})
            return f"已收录的报告中没有{'、'.join(map(str, filters.years))}年的报告（已收录：{'、'.join(map(str, have)) or '无'}）"
        return "没有符合条件的报告"

    def _refuse(self, question: str, filters: Filters, searched: dict, reason: str, hits: list[Hit] | None = None) -> Answer:
        if not hits:
            relaxed = Filters(report_ids=filters.report_ids, orgs=filters.orgs) if filters.orgs else Filters()
            hits = self.searcher.search(question, k=3, filters=relaxed).hits if self.searcher.index.size else []
        related = []
        for hit in hits[:3]:
            related.append(self._citation(len(related) + 1, hit, hit.passage.start, hit.passage.end))
        scope = []
        if filters.orgs:
            scope.append("、".join(filters.orgs))
        if filters.years:
            scope.append("、".join(f"{y}年" for y in filters.years))
        where = "".join(scope) or "全部"
        text = f"未找到：在{where}的报告中（检索了{searched.get('reports', 0)}份报告）没有找到能回答这个问题的内容：{reason}。"
        return Answer(question=question, text=text, found=False, related=tuple(related), searched=searched, why=reason)

    def _answer_meta(self, question: str, filters: Filters) -> Answer:
        reports = self.searcher.searched_reports(filters)
        searched = {"years": list(filters.years), "orgs": list(filters.orgs), "reports": len(reports)}
        if not reports:
            return self._refuse(question, filters, searched, self._no_reports_reason(filters))
        lines = []
        citations = []
        for report in reports:
            first_line = report.text.split("\n", 1)[0]
            date = f"，发布于{report.published}" if report.published else ""
            lines.append(f"{report.org}{report.year}年的报告（{report.title}{date}）")
            citations.append(Citation(n=len(citations) + 1, source=report.source, title=report.title, org=report.org,
                                      year=report.year, section="", excerpt=first_line, start=0, end=len(first_line),
                                      score=1.0))
        count = f"共{len(reports)}份：" if len(reports) > 1 else ""
        return Answer(question=question, text=count + "；".join(lines) + "。", found=True, citations=tuple(citations),
                      searched=searched, why="answered from the reports' metadata")
