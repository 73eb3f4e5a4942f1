"""What a question asks, apart from how the answer is chosen: its asks (a question may ask two
things), each with its content words and their equivalents in government-report vocabulary, the
measure word and kind of figure it wants, the figures it already states, and the words around its
question word. Which reports it is about is the catalog's (retriever.catalog.Catalog.resolve)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from retriever import thesaurus
from retriever.catalog import without_years
from retriever.numbers import MEASURE_WORDS, asked_measure, find_quantities, number_values
from retriever.tokenize import BIGRAM_MARK, STOPWORDS
from retriever.types import Filters

# How many / how much: 多少, 几个/几次/几名…, 比例, 百分之几, …率是多少, 排第几
NUMERIC_ASK = re.compile(
    r"多少|几[个次名项人件份条篇场宗张家所期批天年种部起户单位]?|比例|比率|占比|百分之几|百分比|[^\s]率(?:是|为|达|有)?(?:多少|几)|数量|多大|多长|多久|金额|第几"
)
RATE_ASK = re.compile(r"率|比例|占比|百分|占[^，,。？?]{0,12}?(?:多少|几成)")  # 占到总事项的多少: a share
# A change asked about, answered as often by a percentage as by a count: 同比增长了多少, 下降了多少
CHANGE_ASK = re.compile(r"增长|增加|上升|提高|提升|下降|减少|降低|压缩|缩短|同比|环比|比上年|比去年|较上年|较去年|幅度|变化")
# What / which / who: 哪个, 什么, 谁, 何种 …
FACT_ASK = re.compile(r"哪个|哪些|哪家|哪里|哪项|哪一|哪部|哪两|哪几|什么|谁|何[种处地时]|怎样|如何|是否")
# How / what measures: 采取了哪些措施, 怎么做的, 有什么做法 — answered with the best sentences of a section
HOW_ASK = re.compile(r"怎么(?:做|推进|开展|落实)|如何(?:做|推进|开展|落实|加强)|哪些(?:措施|举措|做法|工作)|什么(?:措施|举措|做法)|采取了")
# Questions about the reports themselves: their unit, year, date, title, count
META_ASK = re.compile(
    r"哪个单位|哪些单位|哪家单位|什么单位|谁的|哪一年|哪年|年份|什么时候|何时|哪天|发布|日期|标题|多少份报告|几份报告|哪些报告|什么报告"
    r"|报告.*(?:是哪|有哪|有几|有多少|几份)|(?:有|收).*(?:几份|哪些).*报告"
)
# A report named as where to look: 报告里, 报告中, 报告上说
_REPORT_AS_SCOPE = re.compile(r"报告(?:里面|里|中|上|内)(?:说|提到|写的?)?")
# Where a question that asks two things splits: "…多少件，化解了多少？", "…多少次？满意率多少？"
# (only where two of the pieces ask a figure)
ASK_SPLIT = re.compile(r"[，,；;？?、\s]|以及|并且|同时|另外")  # also 几次A、几次B and 几种 多少张
# Months as questions write them: 1-11月, 3月份, 11月底 (years are the catalog's: without_years)
_MONTHS = re.compile(r"\d{1,2}\s*(?:到|至|-|—|~|－)\s*\d{1,2}\s*月份?|\d{1,2}\s*月(?:份|底|末|初)?")
# Words of a question that say nothing of what is asked
_QUESTION_NOISE = ("今年", "去年", "本年", "本年度", "年度", "全年度", "一共", "总共", "共计", "截至", "截止", "期间", "分别",
                   "情况", "报告", "方面", "相关", "一下", "请问", "具体", "大概", "左右", "到底", "都", "里面", "那份", "这份",
                   "其中", "百分之")  # 其中 is a qualifier (Ask.within), 百分之多少 asks for a percentage
_SINGLE_NOISE = "了过着吗呢啊吧是有个次年把给被在和与及的呀么各谁里中内"
_CONTEXT_DROP = re.compile(r"[、“”‘’《》\"'「」『』\s·]")
# How much money, how many people, which rank: the ask itself, not a word to find (罚了多少钱 -> 罚)
_ASKED_AMOUNT = re.compile(r"(?:多少|几)(?:钱|资金|经费|金额|人|次|回|遍)|第几名?")
# Last characters that make categories of their words, so that two words ending in one are siblings:
# 处级/科级, 优秀率/通过率, 发文/来文, 抖音号/视频号, 刑事类/民事类 (four-character words share their last two)
SIBLING_HEADS = frozenset("级率文号类型费额量")
# Ranks named in a question: 第一个, 第二, 首个, 首批
ORDINAL_WORDS = re.compile(r"第[一二三四五六七八九十\d]+|首个|首批|首家|首次")
# A term just before what is asked: 优秀率[是多少], 发文[多少件]
NEAR_ASK = re.compile(r"^.{0,3}?(?:多少|几|第几|百分之)")
# How far a sibling may stand from the figure, or from the word that follows the term, to stand where
# the term stands (科级[领导]干部 for 处级干部; 通过率[达到]100%)
ALIGN_CHARS = 3
_HAN = re.compile(r"[\u4e00-\u9fff]+")
# The question's own figures (266项任务 in "那266项任务…完成了多少项"): never the answer
_STATED_FIGURE = re.compile(r"\d+(?:\.\d+)?\s*(?:" + "|".join(map(re.escape, sorted(MEASURE_WORDS, key=len, reverse=True))) + ")")


# ---- how question words are weighed and matched (measured with govqa eval on dev and dev2) ----
# The confidence of a clause (an answer's, a fact's): its sentence's coverage of the ask's terms
# (with the section and the unit's names), and the clause's own coverage, which keeps the figure
# next to the words asked about
SENTENCE_SHARE = 0.6
CLAUSE_SHARE = 0.4
# A clause whose figures have none of the measure words asked (多少份 asked, 79件 said) loses this
# much: the neighbouring figure
MEASURE_MISMATCH = 0.3
# A word half of whose character pairs are in the sentence counts at this share of a full match
# (kept from the coverage rule that scored the dev set 1.000)
PARTIAL_WORD = 0.8
# A word said only inside a document's name (集中学习《…罚款处罚规定》等法律法规51次 says nothing
# of penalties imposed) counts at this share for figures
QUOTED_MATCH = 0.3
# The least weight a term gets (IDF can be ~0 for words in nearly every passage)
MIN_TERM_WEIGHT = 0.1
# The weight of an everyday word of a question that no indexed passage uses in any of its forms
# (给出, 书面, 上门): a paraphrase's word cannot be checked against any report, so it must not
# outweigh the words that can; at full IDF (the highest of all) it refused paraphrases whose
# official words were all in the answer. A term of art no report uses (简易程序) keeps full IDF:
# a question about it is not answered from a sentence that does not say it.
UNSEEN_WEIGHT = 1.0
# A single character that is a word of its own in a question (做, 打, 搞, 查) is a light verb or a
# particle more often than the subject: it weighs at most this much
SINGLE_CHARACTER_WEIGHT = 1.0

# Names of documents: 《中华人民共和国行政处罚法》
QUOTED_NAME = re.compile(r"《[^》]*》")


def normalise(text: str) -> str:
    """For matching: NFKC, lower case, quotes and separators dropped."""
    return _CONTEXT_DROP.sub("", unicodedata.normalize("NFKC", text)).lower()


@dataclass(frozen=True)
class Term:
    """A content word of a question, its IDF weight, and the forms that count as saying it
    (itself 1.0; thesaurus equivalents 1.0; related words less)."""

    word: str
    weight: float
    forms: dict[str, float] = field(default_factory=dict)
    grams: tuple[tuple[str, tuple[str, ...]], ...] = ()  # the character pairs of its forms of 3+ characters
    key: str = ""  # the word normalised, as it is matched

    @classmethod
    def of(cls, word: str, weight: float, forms: dict[str, float]) -> Term:
        grams = tuple((f, tuple(f[i : i + 2] for i in range(len(f) - 1))) for f in forms if len(f) >= 3)
        return cls(word, weight, forms, grams, normalise(word))


@dataclass(frozen=True)
class Ask:
    text: str
    terms: tuple[Term, ...]
    numeric: bool
    rate: bool
    change: bool  # a change (同比增长了多少): a percentage answers it as well as a count
    measure_kind: str  # "count", "percent", "money", "ordinal", "duration", …
    measure_words: frozenset[str]  # the measure words it asks for (人次, 种, 元 …); empty: any
    stated: frozenset[float]  # figures the question itself states
    anchors: tuple[Term, ...]  # the content words just before and after the question word (fact asks)
    plain: str  # the ask without unit names and years: what is compared by meaning with a clause
    key: str  # the ask normalised, as it is matched
    within: bool  # "其中…几起": a part of a figure just given, said after it in the same sentence
    how: bool  # "采取了哪些措施": answered with the best sentences of the passage, not one clause
    ordinals: tuple[str, ...]  # ranks the question names (全市第一个, 首批): a fact's clause says them


def coverage(terms: tuple[Term, ...] | list[Term], context: str, quoted: str = "") -> float:
    """IDF-weighted share of the terms that `context` (normalised) says, in any of their forms; a
    long word half of whose character pairs are there counts partly; a word said only in `quoted`
    (the names of documents in 《》, which mention topics the sentence is not about) counts at
    QUOTED_MATCH."""
    if not terms:
        return 0.0
    total = got = 0.0
    for term in terms:
        total += term.weight
        best = max((share for form, share in term.forms.items() if form in context), default=0.0)
        if best < 1.0:  # a partial match only counts where no whole one does
            if quoted:
                best = max([best] + [share * QUOTED_MATCH for form, share in term.forms.items() if form in quoted])
            for form, grams in term.grams:
                part = sum(g in context for g in grams) / len(grams)
                if part >= 0.5:
                    best = max(best, term.forms[form] * part * PARTIAL_WORD)
        got += term.weight * best
    return got / total


def _join_single_characters(words) -> list[str]:
    """Consecutive single characters jieba could not group are one word: 新设 (新|设 in 新设了什么
    指标) is found in 创新设置, while 新 and 设 alone say little."""
    out: list[str] = []
    run = ""
    for word in words:
        if len(word) == 1 and "\u4e00" <= word <= "\u9fff":
            run += word
            continue
        if run:
            out.append(run)
            run = ""
        out.append(word)
    if run:
        out.append(run)
    return out


class QuestionReader:
    """Reads questions against one index: `idf` gives a word's weight there."""

    def __init__(self, tokenizer, idf: Callable[[str], float], df: Callable[[str], int]):
        self.tokenizer = tokenizer
        self.idf = idf
        self.df = df

    def terms(self, question: str, filters: Filters) -> list[Term]:
        """The question's content words with IDF weights and their equivalent forms; unit names,
        years, months, measure phrases (多少件) and question words removed."""
        text = unicodedata.normalize("NFKC", question)
        for name in sorted(filters.orgs, key=len, reverse=True):
            text = text.replace(name, " ")
        text = _MONTHS.sub(" ", without_years(text, " "))
        text = re.sub(r"(多少|几)\s*(" + "|".join(map(re.escape, MEASURE_WORDS)) + ")", " ", text)
        text = _ASKED_AMOUNT.sub(" ", text)
        text = HOW_ASK.sub(" ", text)  # 采取了哪些措施: the kind of answer asked, not words to find
        for noise in _QUESTION_NOISE:
            text = text.replace(noise, " ")
        words: list[str] = []
        # thesaurus phrases first (打官司, 上门检查), so that jieba does not split them
        phrases = thesaurus.phrases_in(text)
        rest = list(text)
        for start, end, term in phrases:
            words.append(term)
            rest[start:end] = [" "] * (end - start)
        words += _join_single_characters(
            w for w in self.tokenizer.words("".join(rest))
            if w not in STOPWORDS and re.search(r"[\u4e00-\u9fffA-Za-z0-9]", w) and not (len(w) == 1 and w in _SINGLE_NOISE))
        out: dict[str, Term] = {}
        for word in words:
            if word in out:
                continue
            forms = {normalise(w): s for w, s in thesaurus.expand([word]).items()}
            forms[normalise(word)] = 1.0
            # a paraphrase's word may be absent from every report while its official form is common:
            # weigh the term by the most common of its full-strength forms that the reports use
            used = [self.idf(f) for f, share in forms.items() if share == 1.0 and self.used(f)]
            weight = min(used) if used else UNSEEN_WEIGHT if self.tokenizer.is_general(word) else self.idf(word)
            if len(word) == 1:
                weight = min(weight, SINGLE_CHARACTER_WEIGHT)
            out[word] = Term.of(word, max(weight, MIN_TERM_WEIGHT), forms)
        return list(out.values())

    def used(self, form: str) -> bool:
        """Whether some passage uses the word: as a jieba word, or (a phrase jieba cuts in two,
        出具法律意见) by every one of its character pairs."""
        if self.df(form):
            return True
        return len(form) > 2 and all(self.df(BIGRAM_MARK + form[i : i + 2]) for i in range(len(form) - 1))

    def contrasts(self, unsaid: list[Term], ask: Ask, clause: str) -> set[str]:
        """Whether the text says a sibling of a term it does not say, where the question says the
        term: a word of the same length with the same head (the last character; the last two of a
        four-character word) and another modifier — 处级/科级, 发文/来文, 优秀率/通过率, 行政诉讼/民事诉讼 —
        that is not one of the term's forms, standing as the term stands in the question (before the
        word that follows it there, or just before the figure when the term is just before the ask).
        Where it stands elsewhere (上门 asked, 跨部门…抽查70户次 said) it is another matter. Returns the
        terms (their words) that have such a sibling."""
        question = ask.key
        text = normalise(clause)
        found: set[str] = set()
        starts: set[int] | None = None
        for term in unsaid:
            word = term.key
            at = question.find(word)
            if not 2 <= len(word) <= 4 or at < 0 or not _HAN.fullmatch(word):
                continue
            head = word[-2:] if len(word) == 4 else word[-1]
            if (len(word) < 4 and head not in SIBLING_HEADS) or head not in text:
                continue  # 把关/机关, 上门/部门: a shared last character says nothing
            after = question[at + len(word) :].lstrip("的之")
            next_word = next((t.key for t in ask.terms if after.startswith(t.key)), "")
            modifier = word[: -len(head)]
            if next_word and modifier + next_word in text.replace("个", ""):
                continue  # "4个县应急普法基地": 县级 said by its modifier
            before_ask = bool(NEAR_ASK.match(after))
            if starts is None:  # siblings start where words start: 合抽查 is none
                starts, at = set(), 0
                for token in self.tokenizer.cut(text):
                    starts.add(at)
                    at += len(token)
                figures = [q.start for q in find_quantities(text)]  # not 三重一大's 三
            for i in starts:
                other = text[i : i + len(word)]
                if len(other) < len(word) or other == word or not other.endswith(head) or other in term.forms or not _HAN.fullmatch(other):
                    continue
                if modifier in text[max(0, i - ALIGN_CHARS - len(modifier)) : i + len(word) - len(head)]:
                    continue  # 专题开展研讨 says 专题研讨 with a verb between
                rest = text[i + len(word) : i + len(word) + ALIGN_CHARS + len(next_word)]
                if (next_word and next_word in rest) or (before_ask and any(0 <= f - i - len(word) <= ALIGN_CHARS for f in figures)):
                    found.add(term.word)
                    break
        return found

    def asks(self, question: str, filters: Filters) -> list[Ask]:
        """The question's asks: one, or one per part when it asks several figures."""
        numeric = bool(NUMERIC_ASK.search(question))
        parts = [question]
        if numeric:
            pieces = [a for a in ASK_SPLIT.split(question) if a.strip()]
            asking = [a for a in pieces if NUMERIC_ASK.search(a)]
            if len(asking) >= 2:
                # each asking piece on its own: a later one ("满意率多少") must say enough to find its figure
                parts = asking
        return [self.ask(part, question, filters) for part in parts]

    def ask(self, part: str, question: str, filters: Filters) -> Ask:
        numeric = bool(NUMERIC_ASK.search(part))
        kind, words = asked_measure(part) if numeric else ("", set())
        stated = frozenset(v for m in _STATED_FIGURE.finditer(unicodedata.normalize("NFKC", question))
                           for v in number_values(m.group(0)))
        return Ask(text=part, terms=tuple(self.terms(part, filters)), numeric=numeric, rate=bool(RATE_ASK.search(part)), change=bool(CHANGE_ASK.search(part)),
                   measure_kind=kind, measure_words=frozenset(words), stated=stated,
                   anchors=self.anchors(part, filters) if not numeric else (), plain=self.plain(part, filters), key=normalise(part), within="其中" in part,
                   how=not numeric and bool(HOW_ASK.search(part)),
                   ordinals=tuple(ORDINAL_WORDS.findall(part)) if not numeric else ())

    @staticmethod
    def plain(part: str, filters: Filters) -> str:
        text = unicodedata.normalize("NFKC", part)
        for name in sorted(filters.orgs, key=len, reverse=True):
            text = text.replace(name, "")
        return _MONTHS.sub("", without_years(text)).strip(" ，,？?")

    def anchors(self, question: str, filters: Filters) -> tuple[Term, ...]:
        """The content words right before and after the question word (依托[哪个]法治文化公园,
        领导小组[谁]当组长): a fact's answer sits where they are, not where the topic is restated."""
        m = FACT_ASK.search(question)
        if not m:
            return ()
        before = self.terms(question[: m.start()], filters)
        after = self.terms(question[m.end() :], filters)
        before = [t for t in before if len(t.word) > 1]  # 当, 由: light verbs, not where the answer is
        after = [t for t in after if len(t.word) > 1]
        return tuple(before[-1:] + after[:1])


def is_meta(question: str) -> bool:
    """A question about the reports themselves, not about what one says: "…报告里/报告中…" only
    says where to look (杭州市2023年的报告里，哪个指标拿了全国第一？)."""
    return "报告" in question and bool(META_ASK.search(_REPORT_AS_SCOPE.sub(" ", question)))
