"""Comparisons across reports: what a question compares (a ranking, a change between two years or
units, a total), which figures may be compared (the same measure word and the same scope: 79件 and
40余次, or a 累计 figure and a year's, are not equals), and the arithmetic over cited figures,
computed in Decimal and checked against the figures as the reports write them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from retriever.numbers import find_quantities, same_measure

# "哪个单位…最多", "谁最高", "排名前三", "从高到低排": a ranking. Its direction is the superlative's.
_SUPERLATIVE = re.compile(r"最(?P<dir>多|少|高|低|大|小)")
_WHICH = re.compile(r"哪|谁|排名|排序|从高到低|从低到高|从多到少|从少到多|前[一二三四五六七八九十\d]+名?")
_MOST = set("多高大")
# "2024年比2023年多审了多少份", "钱塘区比五常街道少了几件", "相差多少": a change between the two named.
# Matches 比2023年多 / 比五常街道增加了 (the other side and the verb), replaced by 和 + the other side
# when the question is split into its parts
CHANGE_BETWEEN = re.compile(
    r"比(?P<other>[^，,。？?；;比]{1,20}?)(?P<verb>多|少|高|低|增加|减少|增长|下降|提高|降低|上升)了?(?=[^，,。？?；;]{0,12}(?:多少|几))"
)
_DIFFERENCE = re.compile(r"相差|差了?多少|差距|差值|增减")
# "合计多少", "一共", "加起来", "总共": a total over the units or years named
_TOTAL = re.compile(r"合计|总共|一共|加起来|总和|总计|共计")


@dataclass(frozen=True)
class Comparison:
    kind: str  # "rank", "change", "total", or "" (side by side)
    most: bool = True  # rank: the highest first


SIDE_BY_SIDE = Comparison("")


def read_comparison(question: str, parts: int) -> Comparison:
    """What a question about `parts` units or years compares: 哪个单位…最多 -> rank (whatever the
    parts), 2024年比2023年多了多少 -> change, 两个区合计多少 -> total, otherwise side by side.
    A change or total needs two parts or more: 一共办结多少件 of one unit is a plain figure."""
    m = _SUPERLATIVE.search(question)
    if m and _WHICH.search(question):
        return Comparison("rank", m["dir"] in _MOST)
    if parts >= 2 and (CHANGE_BETWEEN.search(question) or _DIFFERENCE.search(question)):
        return Comparison("change")
    if parts >= 2 and _TOTAL.search(question):
        return Comparison("total")
    return SIDE_BY_SIDE


def neutral_question(question: str) -> str:
    """The question with its comparison said as a list, so that each part asks its own figure:
    钱塘区2024年比2023年多审了多少份合同 -> 钱塘区2024年和2023年审了多少份合同."""
    return CHANGE_BETWEEN.sub(lambda m: "和" + m["other"], question)


def rank_question(question: str) -> str:
    """A ranking question as one unit's question: 2023年哪个单位出具的法律意见书最多 -> 2023年出具的
    法律意见书多少 (the unit is given by the filters)."""
    q = re.sub(r"(?:是)?(?:哪个|哪家|哪一个|哪些|哪)(?:单位|部门|区县?|县|市|街道|镇|乡|机关)?|谁", "", question)
    q = re.sub(r"最(?:多|少|高|低|大|小)(?:的是)?|排名前[一二三四五六七八九十\d]+名?|排名|排序|从高到低|从低到高|从多到少|从少到多", "", q)
    q = q.strip(" ？?。，,的")
    return q + ("" if re.search(r"多少|几|第几|比例|率", q) else "多少") + "？"


def _decimal(text: str) -> Decimal | None:
    """The value of a figure as written (146份, 3.2万人次, 63.03%), exactly."""
    found = find_quantities(text)
    if len(found) != 1:
        return None
    q = found[0]
    return Decimal(repr(q.value)).normalize() if q.high is None else None


def comparable(rows) -> str:
    """Why these figures cannot be compared as equals ("" when they can): different measure words
    (79件 and 40余次), a cumulative or a change against one year's figure (累计, 同比), an
    approximate figure (40余件) beside exact ones, or a figure that is a range."""
    if any(not same_measure(r.measure_base, rows[0].measure_base) for r in rows):
        return f"计量单位不同（{'、'.join(r.value for r in rows)}）"
    if any(r.fact.kind == "ordinal" for r in rows):
        return f"名次不是数量（{'、'.join(r.value for r in rows)}）"
    if len({r.fact.scope for r in rows}) > 1:
        said = [r.value + (f"（{'、'.join(sorted(r.fact.scope))}）" if r.fact.scope else "") for r in rows]
        return f"统计口径不同（{'、'.join(said)}）"
    approx = [r.value for r in rows if r.approximate]
    if approx:
        return f"有约数（{'、'.join(approx)}），不能精确比较"
    if any(_decimal(r.value) is None for r in rows):
        return "有数字不是单一数值"
    return ""


def shown(value: Decimal) -> str:
    """A computed value as a figure is written: 26, 64.82 (no trailing zeros, no exponent)."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def difference(first, second) -> tuple[Decimal, str]:
    """first − second, and its arithmetic as text over the figures as written:
    (146份, 120份) -> (26, "146份 − 120份 = 26份"). Checked: each figure read back from its text
    must be the value the row carries."""
    a, b = _checked(first), _checked(second)
    d = a - b
    return d, f"{first.value} − {second.value} = {shown(d)}{first.measure_base}"


def total(rows) -> tuple[Decimal, str]:
    """The sum of the figures and its arithmetic: (4件, 3件) -> (7, "4件 + 3件 = 7件")."""
    values = [_checked(r) for r in rows]
    s = sum(values, Decimal(0))
    return s, f"{' + '.join(r.value for r in rows)} = {shown(s)}{rows[0].measure_base}"


def _checked(row) -> Decimal:
    value = _decimal(row.value)
    if value is None or row.number is None or abs(float(value) - row.number) > 1e-9 * max(1.0, abs(row.number)):
        raise ValueError(f"the figure {row.value!r} does not read back as {row.number!r}")
    return value
