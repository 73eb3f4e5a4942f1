"""Numbers in report text: Arabic and full-width digits, Chinese numerals (十二, 两, 三十余), with
their measure words (件, 份, 人次, %, 万元 …). Matching uses normalised values; display keeps the
report's own characters."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10_000, "亿": 100_000_000}
CN_NUMERAL = "零〇一二两三四五六七八九十百千万亿"

MEASURE_WORDS = (
    "万人次", "人次", "户次", "场次", "班次", "车次", "批次", "万元", "亿元", "千元", "元", "平方米", "公里", "小时",
    "课时", "学时", "万份", "万件", "万人", "万条", "件", "份", "次", "人", "名", "个", "项", "条", "篇", "场", "宗",
    "张", "家", "所", "期", "批", "台", "套", "本", "册", "起", "处", "座", "户", "支", "组", "类", "轮", "天",
    "倍", "万", "亿", "%", "‰", "单", "块", "部", "辆", "栋", "间", "节", "堂", "课", "届", "位", "封", "幅", "米",
)
_MEASURE_RE = "|".join(re.escape(m) for m in sorted(MEASURE_WORDS, key=len, reverse=True))
QUANTITY = re.compile(
    rf"(?P<prefix>近|约|超过|超|逾|共|达|累计)?"
    rf"(?P<num>\d+(?:\.\d+)?|[{CN_NUMERAL}]+)"
    rf"(?P<approx>余|多)?"
    rf"(?P<unit>{_MEASURE_RE})"
    rf"(?P<approx2>余|多)?"
)
PERCENT_WORDS = re.compile(rf"百分之(?P<num>\d+(?:\.\d+)?|[{CN_NUMERAL}]+)")
_ANY_NUMBER = re.compile(rf"\d+(?:\.\d+)?|[{CN_NUMERAL}]{{2,}}|[一二两三四五六七八九十]")


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


def number_value(token: str) -> float | None:
    token = unicodedata.normalize("NFKC", token)
    try:
        return float(token)
    except ValueError:
        value = cn_to_int(token)
        return float(value) if value is not None else None


@dataclass(frozen=True)
class Quantity:
    start: int  # offsets into the text searched
    end: int
    value: float
    unit: str
    approx: bool
    text: str


def find_quantities(text: str) -> list[Quantity]:
    """Counted quantities in `text` (full-width digits allowed): 79件, 40余条, 100%, 十二次.
    Years, dates, ordinals (第一, 一是) and slogans' small numbers before non-measure words are left out."""
    norm = unicodedata.normalize("NFKC", text)
    if len(norm) != len(text):  # NFKC changed lengths (rare ligatures): fall back to the raw text
        norm = text
    out = []
    for m in QUANTITY.finditer(norm):
        num = m.group("num")
        before = norm[m.start("num") - 1 : m.start("num")] if m.start("num") else ""
        if before == "第" or (before.isdigit()):
            continue
        if not num[0].isdigit() and len(num) == 1 and m.group("unit") in ("个", "项", "次", "批", "类", "支", "组") and not m.group("prefix"):
            # 两个确立, 四个意识, 一项 …: slogans and set phrases more often than counts
            if norm[m.end() : m.end() + 2] and not re.match(r"[，,。；;、]", norm[m.end() : m.end() + 1]):
                continue
        value = number_value(num)
        if value is None:
            continue
        approx = bool(m.group("approx") or m.group("approx2") or m.group("prefix") in ("近", "约", "超过", "超", "逾"))
        out.append(Quantity(m.start("num"), m.end(), value, m.group("unit"), approx, text[m.start("num") : m.end()]))
    for m in PERCENT_WORDS.finditer(norm):
        value = number_value(m.group("num"))
        if value is not None:
            out.append(Quantity(m.start(), m.end(), value, "%", False, text[m.start() : m.end()]))
    return sorted(out, key=lambda q: q.start)


def number_values(text: str) -> set[float]:
    """Every number written in `text`, normalised (for the every-number-is-cited check)."""
    norm = unicodedata.normalize("NFKC", text)
    values = set()
    for m in _ANY_NUMBER.finditer(norm):
        value = number_value(m.group(0))
        if value is not None:
            values.add(value)
    return values
