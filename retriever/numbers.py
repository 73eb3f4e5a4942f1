"""Numbers in report text: Arabic and full-width digits (with thousands separators and decimals),
Chinese numerals (十二, 两, 三十余, 一点五亿, 百分之九十五点六), ranges (3-5个), ordinals (排名第四) and
durations (连续三年), with their measure words (件, 份, 人次, %, 万元 …). Matching uses normalised
values; display keeps the report's own characters.

Chinese numerals are converted by the small parser below rather than by the cn2an package: cn2an
gives the same values on every form tested here, but costs 64 µs a numeral (this parser: ~2 µs)
and 0.47 s to import, does not take 一点五亿 or 三十余, and would still need the rules here that say
which numerals are figures (一是, 第一责任人, “两个确立” are not)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10_000, "亿": 100_000_000}
CN_NUMERAL = "零〇一二两三四五六七八九十百千万亿"
_CN_DIGIT = "零〇一二三四五六七八九"
_SCALES = {"万": 10_000, "亿": 100_000_000, "百万": 1_000_000, "千万": 10_000_000, "万亿": 10**12}

# Measure words by kind. A word's kind is what a question asks with it (几种 → count, 多少钱 → money).
_COUNT = (
    "人次", "户次", "场次", "班次", "车次", "批次", "家次", "件次", "项次", "个次", "台次", "架次", "篇次", "条次",
    "课时", "学时", "件", "份", "次", "人", "名", "个", "项", "条", "篇", "场", "宗", "张", "家", "所", "期", "批",
    "台", "套", "本", "册", "起", "处", "座", "户", "支", "组", "类", "轮", "单", "块", "部", "辆", "栋", "间", "节",
    "堂", "课", "届", "位", "封", "幅", "种", "门", "例", "笔", "款", "卷",
)
_MONEY = ("元", "千元", "美元")
_PERCENT = ("%", "％", "‰", "个百分点", "百分点")
_DURATION = ("年", "个月", "天", "小时", "分钟", "个工作日", "工作日", "周", "周年")
_SIZE = ("平方公里", "平方米", "立方米", "公里", "千米", "米", "亩", "公顷", "吨", "公斤", "千克")
_RATIO = ("倍",)
_KIND_OF = {w: k for k, ws in (("count", _COUNT), ("money", _MONEY), ("percent", _PERCENT), ("duration", _DURATION),
                               ("size", _SIZE), ("ratio", _RATIO)) for w in ws}
_BASE_MEASURES = tuple(sorted(_KIND_OF, key=len, reverse=True))

# Every measure word as written after a number, scaled forms included (万元, 万人次); longest first, so
# an alternation built from it in this order ("(多少|几)(人次|…|人)") takes 人次 before 人.
MEASURE_WORDS = tuple(sorted(
    {*_KIND_OF, "万", "亿", *(s + w for s in ("万", "亿") for w in ("元", "人次", "人", "名", "件", "份", "条", "户",
                                                                   "次", "张", "平方米", "亩"))},
    key=lambda w: (-len(w), w)))

# Full-width forms (ＦＦ01–ＦＦ5Ｅ: ７９, ，, ：, ％, ～) and the ideographic space folded to ASCII, one
# character for one. Used on tokens and questions only: the patterns below take both forms (Python's
# \d matches ７), as folding a whole paragraph costs more (0.35 ms for 2,000 characters) than the
# search itself.
_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20, 0x301C: 0x7E, 0x2236: 0x3A}


def fold(text: str) -> str:
    """Full-width digits and punctuation as ASCII, length unchanged: '１，２３４件：' -> '1,234件:'."""
    return text.translate(_FOLD)


_CN = f"[{CN_NUMERAL}]+(?:点[{_CN_DIGIT}]+)?"
# 1,234 / 12,345,678.5: groups of exactly three digits after a lead of one to three (2023,123 is not one)
_GROUPED = r"(?<![\d.．])\d{1,3}(?:[,，]\d{3})+(?!\d)(?:[.．]\d+)?"
_GROUPED_RE = re.compile(rf"(?=\d){_GROUPED}")
_ARABIC = rf"{_GROUPED}|(?<![\d.．])\d+(?:[.．]\d+)?"
_NUM = rf"(?:{_ARABIC}|(?<![几数成{CN_NUMERAL}]){_CN})"
_MEASURE_ALT = "|".join(re.escape(m) for m in _BASE_MEASURES)
# first characters of the measure words: the alternation is tried only where one can start (2x faster)
_MEASURE_FIRST = re.escape("".join(sorted({m[0] for m in _BASE_MEASURES})))
# One figure. Matches: 79件, 40余条, 约5万余人次, 1,234件, 3-5个, 三至五年, 1.5亿元,
# 一点五亿元, 5000余万元, 95.6%, 百分之九十五点六, 第四, 第27位, 100人左右, 90%以上, 超471万, 不少于2次
QUANTITY = re.compile(
    rf"(?=[超大将接约近逾第不\d{CN_NUMERAL}])"  # a first character to start at: scanning is 4x faster with it
    rf"(?P<pre>超过|大约|将近|接近|不少于|不低于|约|近|逾|超)?"
    rf"(?P<pct>百分之)?(?P<ord>第)?"
    rf"(?P<a>{_NUM})(?P<ascale>百万|千万|万亿|万|亿)?"
    rf"(?:\s*(?P<dash>[-~—–－～〜]|至|到)\s*(?P<b>{_NUM}))?"
    rf"(?P<ap1>余|多)?(?P<scale>百万|千万|万亿|万|亿)?(?P<ap2>余|多)?"
    rf"(?:(?=[{_MEASURE_FIRST}])(?P<unit>{_MEASURE_ALT}))?(?P<ap3>余)?(?P<post>以上|左右|之多|以下|以内)?"
)
# a ratio between two numbers: 1:1, 3∶1, 1：2, 1比1
_RATIO_RE = re.compile(rf"(?=\d)(?P<a>{_ARABIC})\s*(?P<sep>[:：∶]|比)\s*(?P<b>{_ARABIC})(?![\d:：∶])")
_RATIO_HINT = re.compile(r"\d\s*[:：∶比]\s*\d")  # 1:3, 1比1 somewhere: only then is _RATIO_RE run
_RATIO_CONTEXT = 8  # characters either side of a 1:3 searched for 比 (比例为1:3, 按1:1的比例); a bare 8:30 is a time
# a number token for the every-number-is-cited check: 1,234 / 3.5 / 十二 / 一点五亿 / 5000余万 / 百分之九十五
# (the 百 of 百分点, 百分比 is a word, not 100)
_VALUE = re.compile(rf"(?=[\d{CN_NUMERAL}])(?:百分之)?(?!百分)(?P<a>{_ARABIC}|{_CN})(?:[余多]?(?P<scale>百万|千万|万亿|万|亿))?")
_PLAIN = re.compile(r"\d+(?:\.\d+)?")  # 1234, 3.5: what Decimal() is given
_APPROX_BEFORE = {"超过", "大约", "将近", "接近", "不少于", "不低于", "约", "近", "逾", "超"}

# Clause delimiters: the ， in 全年共计1,234件，其中… (not the , of 1,234: see split_clauses)
_CLAUSE_DELIM = re.compile(r"[，,。！？!?；;：:\n]")
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*")  # 一、…；二、… : one span each, with its 。 or ；
_DIGIT_COLON = re.compile(r"\d([:：∶])(?=\d)")  # 7:30, 1:1 — a figure, not a clause break
_BOUNDARY = set("，,。！？!?；;：:\n、)）”\"") | {""}  # what may follow a figure that closes a phrase

# Numbered slogans and set phrases read as words, not counts (两个确立, 四个意识, 三会一课 …), matched
# where the numeral starts; political vocabulary common to every report, for where no quotation marks
# set them off (quoted numbers are skipped anyway).
_SLOGAN = re.compile(
    r"两个(?:确立|维护|务必|毫不动摇|结合)|四个(?:意识|自信|全面|最严)|三会一课|三重一大|五个一|三个代表|"
    r"两学一做|八项规定|(?<=最多跑)一次|三项制度|一岗双责|一把手|一件事|一网通办|一网统管|一站式|一次性|一体化|一揽子|"
    r"[一二三四五六七八九十]+[中次]全会"
)
_DEMONSTRATIVE = set("这那每同上下前后本当全整某哪另各任单唯统逐")  # 这一年, 每一个, 下一年度: not 1
_PLAN_NAME = re.compile(r"行动|规划|计划|攻坚|方案|纲要")  # 三年行动计划: a plan's name, not a duration
_ENUM_BEFORE = set("，,。！？!?；;：:\n、(（ 　") | {""}  # 第一，… at a clause's start enumerates
_PRODUCT = set("×*+xX/＊＋ｘＸ／")  # 7×24, 5+2, 1+N: a schedule or a slogan
_TIMES = set("×*xX＊ｘＸ")  # 7×24小时: round the clock, a figure with its measure word
_RANK_UNITS = {"名", "位"}  # 第二名, 第27位: a rank; 第一批, 第十四届, 第三方: names
_QUOTE_LOOKBACK = 30  # an opening “ within this many characters, not closed: the number is quoted (“五个一”)


@dataclass(frozen=True)
class Quantity:
    start: int  # offsets into the text searched; the figure with its approximation words
    end: int
    value: float  # normalised: 1,234件 -> 1234, 3.2万人次 -> 32000, 95.6% -> 95.6, 3-5个 -> 3
    unit: str  # as written after the number: 件, 万元, 万人次, %, 年; "" for a bare 第四
    approx: bool  # 余, 多, 约, 近, 逾, 超过, 以上, 左右 …
    text: str  # the report's own characters: 约5万余人次, 1，234件, 百分之九十五点六
    kind: str = "count"  # count, money, percent, ordinal, duration, size, ratio
    high: float | None = None  # a range's upper end (3-5个 -> 5)
    measure: str = ""  # the unit without 万/亿: 万元 -> 元, 万人次 -> 人次


def cn_to_int(text: str) -> int | None:
    """十二 -> 12, 两 -> 2, 三十 -> 30, 一百零五 -> 105, 二〇二三 -> 2023; None if not a numeral."""
    if not text or any(c not in CN_NUMERAL for c in text):
        return None
    if all(c in _DIGITS for c in text) and len(text) > 1:  # digit by digit: 二〇二三
        return int("".join(str(_DIGITS[c]) for c in text))
    total = section = digit = 0
    for c in text:
        if c in _DIGITS:
            digit = _DIGITS[c]
        elif c in _UNITS:
            section += (digit or 1) * _UNITS[c]
            digit = 0
        else:
            section += digit
            total += (section or 1) * _BIG[c]
            section = digit = 0
    return total + section + digit


def _decimal(token: str) -> Decimal | None:
    """'1,234' -> 1234, '３.５' -> 3.5, '九十五点六' -> 95.6, '十二' -> 12; None if not a number."""
    token = fold(token).replace(",", "")
    if _PLAIN.fullmatch(token):
        return Decimal(token)
    whole, dot, frac = token.partition("点")
    value = cn_to_int(whole)
    if value is None or (dot and not frac) or any(c not in _CN_DIGIT for c in frac):
        return None
    return Decimal(f"{value}.{''.join(str(_DIGITS[c]) for c in frac)}") if frac else Decimal(value)


def number_value(token: str) -> float | None:
    """One number token as a value: '1,234' -> 1234.0, '一点五' -> 1.5, '７９' -> 79.0."""
    value = _decimal(token)
    return float(value) if value is not None else None


@lru_cache(maxsize=4096)  # tokens repeat (一, 二, 2023): the cache halves number_values' time
def _scaled(token: str, scale: str | None) -> Decimal | None:
    value = _decimal(token)
    return value * _SCALES[scale] if value is not None and scale else value


def _kind(unit: str) -> str:
    return _KIND_OF.get(unit, "count")


def _quoted(text: str, at: int) -> bool:
    seg = text[max(0, at - _QUOTE_LOOKBACK) : at]
    return seg.rfind("“") > seg.rfind("”")


def _is_calendar_year(a: str, unit: str) -> bool:
    """2023年, 二〇二三年, 2023年度: a year, not a duration."""
    if unit != "年":
        return False
    if a[0].isdigit():
        a = fold(a)
        return "." not in a and len(a.replace(",", "")) >= 4
    return len(a) >= 3 and all(c in _DIGITS for c in a)


def _quantity(m: re.Match, text: str) -> Quantity | None:
    pre, pct, ordinal, a, ascale, b, ap1, bscale, ap2, unit, ap3, post = m.group(
        "pre", "pct", "ord", "a", "ascale", "b", "ap1", "scale", "ap2", "unit", "ap3", "post")
    if not (unit or pct or ordinal or bscale or ascale):
        return None  # 进一步, 一是, 12345热线: a number with nothing that makes it a figure (most matches)
    unit = unit or ""
    if unit == "年" and a[0].isdigit() and _is_calendar_year(a, unit):  # 2023年: the commonest, checked first
        return None
    start, end = m.start(), m.end()
    after = text[end : end + 1]
    before = text[start - 1 : start] if start else ""
    chinese = not a[0].isdigit()
    if pre and ordinal:
        return None
    if after in _PRODUCT:  # the 7 of 7×24小时, the 5 of 5+2: a part of a schedule or a slogan
        return None
    if before in _PRODUCT:
        if before not in _TIMES or not (unit and text[start - 2 : start - 1].isdigit()):
            return None  # 1+N, 5+2: a slogan
        while start > 1 and text[start - 2].isdigit():  # 7×24小时: a schedule, shown whole
            start -= 1
        start -= 1
    if before == "上" and a[0] in "百千万亿":  # 上百人, 成千上万: not figures
        return None
    if _quoted(text, start):  # “五个一”工程, “12345”: a name
        return None
    if chinese and _SLOGAN.match(text, m.start("a")):
        return None
    scale = bscale or ascale
    if pct:
        kind, unit_out, measure = "percent", "%", "%"
    elif unit == "％":  # the full-width sign, as the ASCII one
        kind, unit_out, measure = "percent", "%", "%"
    elif ordinal:
        # 排名第四, 全市第二名, 位列第27位: a rank. 第一责任人, 第一议题, 第三方, 第十四届: names;
        # 第一，… at a clause's start: an enumeration
        if unit and unit not in _RANK_UNITS:
            return None
        if not unit and after not in _BOUNDARY and after != "的":
            return None
        if before in _ENUM_BEFORE:
            return None
        kind, unit_out, measure = "ordinal", unit, unit
    else:
        if not unit:
            if chinese or not scale:  # 十万火急, 12345热线: no measure word, not a figure
                return None
            unit_out, measure, kind = scale, "", "count"  # 超471万
        else:
            written_scale = scale or (a[-1] if chinese and a[-1] in "万亿" else "")
            unit_out = written_scale + unit
            measure, kind = unit, _kind(unit)
        if _is_calendar_year(a, unit) or (b and _is_calendar_year(b, unit)):
            return None
        if unit == "年" and _PLAN_NAME.match(text, end):  # 三年行动计划
            return None
        if chinese and len(a) == 1 and not b:
            # 一个新台阶, 一项重要任务, 一年来, 一次性: 一 as an article; 这一年, 下一年度: a demonstrative
            if a == "一" and (after not in _BOUNDARY or before in _DEMONSTRATIVE):
                return None
        if unit == "届" and re.match(f"[{CN_NUMERAL}]", after):  # 二十届三中全会
            return None
        if chinese and len(a) == 2 and all(c in _DIGITS for c in a) and not b:  # 两三个, 三五年: about 2 to 3
            low, high = _DIGITS[a[0]], _DIGITS[a[1]]
            if high <= low:
                return None
            return Quantity(start, end, float(low), unit_out, True, text[start:end], kind, float(high), measure)
    value = _scaled(a, ascale or (bscale if not b else None))
    if value is None:
        return None
    high = None
    if b:
        high_value = _scaled(b, bscale)
        if high_value is None:
            return None
        if bscale and not ascale:  # 3-5万元: the scale is both ends'
            value = _scaled(a, bscale)
        if high_value <= value:  # 11-3: not a range
            return None
        high = float(high_value)
    approx = bool(ap1 or ap2 or ap3 or post)
    if pre in _APPROX_BEFORE and not (pre == "近" and kind == "duration"):  # 近三年: the last three years, exactly
        approx = True
    return Quantity(start, end, float(value), unit_out, approx, text[start:end], kind, high, measure)


def find_quantities(text: str) -> list[Quantity]:
    """The figures in `text` (full-width digits allowed): 79件, 40余条, 1,234件, 100%, 十二次, 约5万余人次,
    3-5个, 一点五亿元, 百分之九十五点六, 排名第四, 连续三年, 比例为1:3. Calendar years and dates,
    enumerations (一是, 第一，), names (第一责任人, 三年行动计划), slogans (“两个确立”) and 一 as an
    article (一项重要工作) are left out."""
    out = []
    for m in QUANTITY.finditer(text):
        q = _quantity(m, text)
        if q is not None:
            out.append(q)
    for m in _RATIO_RE.finditer(text) if _RATIO_HINT.search(text) else ():
        sep = fold(m.group("sep"))
        if sep != "比" and "比" not in text[max(0, m.start() - _RATIO_CONTEXT) : m.end() + _RATIO_CONTEXT]:
            continue
        if any(q.start < m.end() and m.start() < q.end for q in out):
            continue
        a, b = _decimal(m.group("a")), _decimal(m.group("b"))
        if a and b:
            out.append(Quantity(m.start(), m.end(), float(a / b), sep, False, text[m.start() : m.end()], "ratio", None, sep))
    return sorted(out, key=lambda q: q.start)


def number_values(text: str) -> set[float]:
    """Every number written in `text`, as values (for the every-number-is-cited check): 1,234 -> 1234
    (not 1 and 234), 一点五亿 and 1.5亿 -> 150000000, 第二 -> 2, 三年 -> 3, 百分之九十五点六 -> 95.6."""
    values = set()
    for m in _VALUE.finditer(text):
        value = _scaled(m.group("a"), m.group("scale"))
        if value is not None:
            values.add(float(value))
    return values


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans, each with its closing 。！？；; (a newline ends one too): offsets into `text`."""
    return [m.span() for m in _SENTENCE.finditer(text)]


def split_clauses(text: str) -> list[tuple[int, int]]:
    """Clause spans of `text`, cut at ，,；;：:。！？!? and newlines, never inside a figure (1,234 /
    1，234 / 7:30 / 1:1); the delimiters are left out. Offsets are into `text`."""
    kept = {m.start(1) for m in _DIGIT_COLON.finditer(text)}
    for m in _GROUPED_RE.finditer(text):
        kept.update(i for i in range(m.start(), m.end()) if text[i] in ",，")
    spans, start = [], 0
    for m in _CLAUSE_DELIM.finditer(text):
        if m.start() in kept:
            continue
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


# ---- what a question asks for ------------------------------------------------------------------
# Measure words that name the same thing: a question's 多少人 is answered by 300名 or 12位.
_SAME_MEASURE = ({"人", "名", "位"}, {"件", "宗", "起"})
_MONEY_WORDS = {"元", "万元", "亿元"}
# 多少钱, 多少资金, 经费多少, 罚款金额
_ASK_MONEY = re.compile(r"多少钱|几钱|资金|经费|费用|金额|预算|款项|投入多少|花了多少|花费|罚款|罚没")
# 比例, 占比, 比率, 百分比, 百分之几, 办结率是多少, 满意度 (not 率先: "first to")
_ASK_PERCENT = re.compile(r"比例|占比|比率|百分比|百分之几|百分点|率(?!先)|满意度")
# 排第几, 第几名, 排名, 名次, 位次, 位列第几
_ASK_ORDINAL = re.compile(r"第几|排名|排第|排在|名次|位次|位列|位居")
_ASK_DURATION = re.compile(r"多久|多长时间|多少时间")  # 审批时限压缩了多长时间
# 几种, 多少人次, 多少万元, 几个工作日, 多少年 (the 年 of 多少年轻干部, 几年级 is no measure: see _NOT_YEARS)
_ASK_MEASURE = re.compile(rf"(?:多少|几)\s*(?P<u>{'|'.join(map(re.escape, MEASURE_WORDS))})")
_NOT_YEARS = set("轻度份级代")
_ASK_RATIO = re.compile(r"几倍|多少倍")
_ASK_ANY = re.compile(r"多少|几|数量|多大|多高|总数|总量|规模")


def same_measure(a: str, b: str) -> bool:
    """Whether two measure words count the same thing: 件 and 起 (cases), 人 and 名 (people)."""
    return a == b or any(a in group and b in group for group in _SAME_MEASURE)


def _asked_unit(q: str) -> str | None:
    for m in _ASK_MEASURE.finditer(q):
        if m.group("u") == "年" and q[m.end() : m.end() + 1] in _NOT_YEARS:
            continue
        return m.group("u")
    return None


def _percent_words(q: str) -> set[str]:
    return {"%", "个百分点"} if "百分点" in q else {"%"}


def asked_measure(question: str) -> tuple[str | None, set[str]]:
    """What kind of figure a question asks for, and the measure words that answer it:
    有几种… -> ("count", {"种"}); 多少人次 -> ("count", {"人次"}); 花了多少钱 -> ("money", {"元", "万元", "亿元"});
    通过率是多少 -> ("percent", {"%"}); 排第几 -> ("ordinal", set()); 连续几年 -> ("duration", {"年"});
    多少 with no hint -> ("count", set()); no figure asked -> (None, set()). A quantity answers when its
    kind is the kind and, if words are given, its unit or measure is one of them. A measure word named
    after 多少/几 decides first (多少个资金项目 asks a count), then rate, money and time words."""
    q = fold(question)
    if _ASK_ORDINAL.search(q):
        return "ordinal", set()
    if _ASK_RATIO.search(q):
        return "ratio", {"倍"}
    unit = _asked_unit(q)
    if unit:
        base = unit[1:] if unit[0] in "万亿" and len(unit) > 1 else unit
        kind = _kind(base) if base not in ("万", "亿") else "count"
        if kind == "money":
            return kind, set(_MONEY_WORDS)
        if kind == "percent":
            return kind, _percent_words(q)
        if base in ("万", "亿"):
            return kind, set()
        words = {base}
        for group in _SAME_MEASURE:
            if base in group:
                words = set(group)
        return kind, words
    if _ASK_PERCENT.search(q):  # before money: 资金拨付率 asks a rate
        return "percent", _percent_words(q)
    if _ASK_MONEY.search(q):
        return "money", set(_MONEY_WORDS)
    if _ASK_DURATION.search(q):
        return "duration", set()
    if _ASK_ANY.search(q):
        return "count", set()
    return None, set()
