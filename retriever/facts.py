"""The facts table: every figure of every passage, read once at ingest with the same number parsing
as answers (numbers.py), with what it counts. A fact is one figure in one clause: its value as
written and normalised, measure word, qualifiers, the clause's predicate and object (出具 ·
法律意见书 for 全年出具法律意见书79件), and offsets of the figure, its clause and its sentence in the
report text. The unit and year are the report's (one place owns them: Report). Facts are stored
in each segment beside its passages, so they are built, swapped and deleted with them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .numbers import CN_NUMERAL, find_quantities, split_clauses, split_sentences
from .tokenize import get_tokenizer, normalize
from .types import Passage

# Words of a figure's own text or its clause that qualify it: an approximate figure (40余次, 约5万人),
# a total over years (累计), a change against last year (同比). Figures with different qualifiers are
# not ranked or added as equals.
APPROX_MARKS = ("余", "多", "约", "近", "逾", "超过", "超", "以上", "左右", "以下", "以内", "大约", "将近", "接近", "不少于", "不低于")
CLAUSE_QUALIFIERS = ("累计", "同比", "环比", "共计", "合计", "总计", "共")
# Qualifiers that change what a figure is (not only how exact it is): a cumulative or a change
SCOPE_QUALIFIERS = frozenset({"累计", "同比", "环比"})
# Words between a clause's object and its figure that say nothing of what is counted
# (出具法律意见书共79件, 案件数达到120件, 满意率为98%)
_LINKS = ("共计", "合计", "总计", "累计", "达到", "共", "达", "为", "是", "了", "约", "近", "超过", "逾", "计", "有", "已")
# Verbs that carry no predicate of their own before the real one (完成电子证照签发, 实现…覆盖)
_LIGHT_VERBS = frozenset({"完成", "实现", "进行", "开展", "组织", "累计", "同比", "是", "有", "为", "达", "达到"})
# A figure that is a rate names it with the word before: 办结率100%, 出庭应诉比例为100%
_RATE_END = ("率", "比例", "占比", "比重", "满意度", "覆盖面")
_NUMERAL = re.compile(f"[0-9０-９{CN_NUMERAL}]")  # what every figure holds (find_quantities reads them)
_PART = re.compile(r"^\s*(?:其中|含|包括)")  # a clause that gives parts of the figure before it
_NOUN_TAGS = ("n", "v", "vn", "a", "j", "l", "i", "b")  # what an object may be made of (审查意见 is v+n)


@dataclass(frozen=True)
class Fact:
    report_id: str
    row: int  # the passage's row (in its segment when stored; in the index when read from one)
    value: float  # normalised (numbers.Quantity.value): 1,234件 -> 1234, 3.2万人次 -> 32000
    high: float | None  # a range's upper end
    text: str  # as written: 约5万余人次
    unit: str  # the measure word as written after the number: 件, 万元, %
    measure: str  # the measure word without 万/亿: 元, 人次
    kind: str  # count, money, percent, ordinal, duration, size, ratio
    qualifiers: tuple[str, ...]  # 余, 约, 累计, 同比 …: what makes it not a plain figure of the year
    predicate: str  # the verb of the clause the figure counts: 出具
    object: str  # what is counted: 法律意见书
    clause: str  # the clause's text (the figure's context)
    start: int  # the figure's offsets in the report text
    end: int
    clause_start: int
    clause_end: int
    sentence_start: int
    sentence_end: int

    @property
    def approximate(self) -> bool:
        return any(q in APPROX_MARKS for q in self.qualifiers)

    @property
    def wording(self) -> str:
        """What the figure counts as the report words it: 出具 · 法律意见书 (either may be missing)."""
        return " · ".join(w for w in (self.predicate, self.object) if w)

    @property
    def scope(self) -> frozenset[str]:
        return frozenset(self.qualifiers) & SCOPE_QUALIFIERS


def _strip_links(text: str) -> str:
    changed = True
    while changed and text:
        changed = False
        for w in _LINKS:
            if text.endswith(w) and len(text) > len(w):
                text, changed = text[: -len(w)], True
    return text


def _phrase(words: list[tuple[str, str]]) -> str:
    """Content words joined: times, numerals, function words and particles dropped, and the
    qualifiers (同比, 累计) and light verbs at its start."""
    out = [w for w, tag in words if tag.startswith(_NOUN_TAGS) and w not in SCOPE_QUALIFIERS]
    while out and out[0] in _LIGHT_VERBS:
        out.pop(0)
    return "".join(out).strip("的")


def _leading_nouns(words: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The words after a figure up to the first verb: 举办3场|专题讲座 -> 专题讲座; 808项|政务服务事项实现… -> 政务服务事项."""
    out = []
    for w, tag in words:
        if tag.startswith("v") and tag != "vn":
            break
        out.append((w, tag))
    return out


_QUOTED = re.compile(r"“[^”]{1,20}”|\"[^\"]{1,20}\"")  # “最多跑一次”事项, “粤智助”业务: a name


def _tags(text: str) -> list[tuple[str, str]]:
    """Words and tags of `text`, a quoted name (“粤智助”) kept whole as one noun: its words (跑, 助)
    are no verbs of the clause."""
    tokenizer = get_tokenizer()
    out, at = [], 0
    for m in _QUOTED.finditer(text):
        out += tokenizer.tag(text[at : m.start()]) + [(m.group(0), "nz")]
        at = m.end()
    return [(w, t) for w, t in out + tokenizer.tag(text[at:]) if w.strip()]


@lru_cache(maxsize=65536)  # report texts repeat their phrasing (出具法律意见书, 开展培训): 2x faster ingest of facts
def predicate_object(before: str, after: str) -> tuple[str, str]:
    """The predicate and object of a figure from its clause's text before and after it:
    ('全年出具法律意见书', '') -> ('出具', '法律意见书'); ('行政复议案件同比增长', '') -> ('增长',
    '行政复议案件'); ('举办', '专题讲座') -> ('举办', '专题讲座'); ('其中公务员', '') -> ('', '公务员');
    ('群众满意率达到', '') -> ('', '群众满意率')."""
    before = _strip_links(normalize(before).strip())
    for end in _RATE_END:
        if before.endswith(end):
            words = _tags(before)
            # the rate's name: the words from the last verb-led phrase (群众满意率, 办结率, 出庭应诉率)
            name = _phrase(words[-3:]) if len(words) > 1 else before
            return "", name if name.endswith(end) else before[-(len(end) + 2) :]
    words = _tags(before)
    verbs = [i for i, (w, t) in enumerate(words) if t.startswith("v") and t != "vn" and w not in _LIGHT_VERBS]
    if any(len(words[i][0]) > 1 for i in verbs):
        # a one-character "verb" beside two-character ones is mostly a piece of a noun jieba split
        # (来|文, 推|文, 驻|县干部): the predicate is a word of two characters or more
        verbs = [i for i in verbs if len(words[i][0]) > 1]
    tail = _leading_nouns(_tags(normalize(after).strip())[:4])
    if not verbs:
        obj = _phrase(words[-4:]) or _phrase(tail)
        return "", obj
    v = verbs[-1]
    predicate = words[v][0]
    obj = _phrase(words[v + 1 :])
    if not obj:  # the verb closes the phrase: its object is before it (行政复议案件同比增长) or after the figure (举办3场讲座)
        obj = _phrase(words[max(0, v - 3) : v]) if v else ""
        obj = _phrase(tail) or obj
    return predicate, obj


def _qualifiers(text: str, before: str) -> tuple[str, ...]:
    found = [m for m in APPROX_MARKS if m in text and not (m == "多" and text.endswith("多"))]
    if "超过" in found:
        found.remove("超")
    if "大约" in found:
        found.remove("约")
    found += [w for w in CLAUSE_QUALIFIERS if w in before[-12:]]
    if "共计" in found or "合计" in found or "总计" in found:
        found = [w for w in found if w != "共"]
    return tuple(dict.fromkeys(found))


def passage_facts(passage: Passage, row: int) -> list[Fact]:
    """The facts of one passage, in text order (offsets are the report's). A sentence's figures are
    read once and each put in its clause (split_clauses never cuts a figure: the same figures as
    reading clause by clause, as answers do, on all 12,651 figures of a 300-report sample and the
    seed and dev reports, in a quarter less time). A clause without a verb of its own in a list
    (可办理“粤智助”业务247项,社保业务38项) takes the verb of the figure before it in the sentence,
    unless it gives a part of that figure (其中公务员234人)."""
    out = []
    text = passage.text
    for s0, s1 in split_sentences(text):
        sentence = text[s0:s1]
        if not _NUMERAL.search(sentence):
            continue  # most sentences state no figure: nothing to split
        figures = find_quantities(sentence)
        if not figures:
            continue
        previous = ""
        for c0, c1 in split_clauses(sentence):
            clause = sentence[c0:c1]
            if _PART.match(clause):
                previous = ""
            for q in figures:
                if not (c0 <= q.start and q.end <= c1):
                    continue
                before, after = sentence[c0 : q.start], sentence[q.end : c1]
                predicate, obj = predicate_object(before, after)
                predicate = previous = predicate or previous
                base = passage.start + s0
                out.append(Fact(
                    report_id=passage.report_id, row=row, value=q.value, high=q.high, text=q.text, unit=q.unit,
                    measure=q.measure, kind=q.kind, qualifiers=_qualifiers(q.text, before), predicate=predicate,
                    object=obj, clause=clause, start=base + q.start, end=base + q.end, clause_start=base + c0,
                    clause_end=base + c1, sentence_start=base, sentence_end=passage.start + s1))
    return out


def span_facts(report_id: str, text: str, start: int, end: int) -> list[Fact]:
    """The facts of text[start:end] of a report (a cited sentence), as ingest reads them."""
    span = Passage(id="", report_id=report_id, section="", text=text[start:end], start=start, end=end, org="",
                   year=None, source="")
    return passage_facts(span, -1)


def extract_facts(passages: list[Passage]) -> list[Fact]:
    """The facts of passages stored in this order (row = position)."""
    return [f for row, p in enumerate(passages) for f in passage_facts(p, row)]
