"""Chinese place names (provinces, prefectures, counties) for telling a unit's place prefix from
the rest of its name, and the region a report speaks of."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

_LEVEL_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "自治旗", "地区", "林区", "省", "市", "区", "县", "州", "盟", "旗")
ZONE_SUFFIXES = ("高新技术产业开发区", "经济技术开发区", "经济开发区", "高新区", "经开区", "开发区", "新区")


@dataclass(frozen=True)
class Place:
    code: str
    name: str

    @property
    def level(self) -> int:  # 0 province, 1 prefecture, 2 county
        return 0 if self.code[2:] == "0000" else 1 if self.code[4:] == "00" else 2

    @property
    def parent_codes(self) -> tuple[str, ...]:
        return (self.code[:2] + "0000", self.code[:4] + "00")[: self.level]


def stem(name: str) -> str:
    for suffix in _LEVEL_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, list[Place]], dict[str, Place], frozenset[str]]:
    by_name: dict[str, list[Place]] = {}
    by_code: dict[str, Place] = {}
    for line in resources.files("retriever").joinpath("places.txt").read_text("utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        code, name = line.split("\t")
        place = Place(code, name)
        by_name.setdefault(name, []).append(place)
        by_code.setdefault(code, place)
    stems = frozenset(stem(n) for n in by_name if len(stem(n)) >= 2)
    return by_name, by_code, stems


@lru_cache(maxsize=1)
def _names_by_opening() -> dict[str, list[str]]:
    """Place names of 3 or more characters, by their first two characters."""
    out: dict[str, list[str]] = {}
    for name in _table()[0]:
        if len(name) >= 3:
            out.setdefault(name[:2], []).append(name)
    return out


def names_in(text: str) -> set[str]:
    """The place names of 3 or more characters the text contains. Only names whose first two
    characters the text has are looked for, not all 3,400 (that scan cost 12 ms a report)."""
    openings = _names_by_opening()
    pairs = {text[i : i + 2] for i in range(len(text) - 1)} & openings.keys()
    return {name for pair in pairs for name in openings[pair] if name in text}


def is_place(name: str) -> bool:
    return name in _table()[0]


def levels(name: str) -> set[int]:
    """The levels a division name is at (0 province, 1 prefecture, 2 county); a municipality such
    as 天津市 is at 0 and 1; empty for a name that is no division."""
    return {p.level for p in _table()[0].get(name, [])}


def division_names() -> list[str]:
    return list(_table()[0])


def _place_at(name: str, i: int) -> int:
    """Length of the place word starting at name[i] (a division name, or a stem plus a zone
    suffix such as 珠海高新技术产业开发区), 0 if none."""
    by_name, _, stems = _table()
    best = 0
    for j in range(min(len(name), i + 12), i + 1, -1):
        word = name[i:j]
        if word in by_name:
            best = max(best, j - i)
            break
    for j in range(i + 2, min(len(name), i + 6) + 1):
        if name[i:j] in stems or name[i:j] in by_name:
            for zone in ZONE_SUFFIXES:
                if name.startswith(zone, j):
                    best = max(best, j - i + len(zone))
    return best


def place_words(name: str) -> list[str]:
    """The place words a name starts with: 深圳市龙岗区重点区域署 -> ['深圳市', '龙岗区']."""
    words, i = [], 0
    while i < len(name):
        step = _place_at(name, i)
        if not step:
            break
        words.append(name[i : i + step])
        i += step
    return words


def split_place(name: str) -> tuple[str, str]:
    """('深圳市龙岗区', '重点区域规划建设管理署'); ('', name) when it starts with no place."""
    place = "".join(place_words(name))
    if not place or place == name:
        return "", name
    return place, name[len(place) :]


def region_of(text: str, hint: str = "") -> str:
    """The region a report speaks of: the most specific place it names, with those of its parent
    divisions it also names (天津市武清区). `hint` (the unit's name) counts first."""
    by_name, by_code, _ = _table()
    counts = Counter({name: text.count(name) for name in names_in(text)})
    for name in list(counts):
        if name in hint:
            counts[name] += 1000
    if not counts:
        return ""

    def support(place: Place) -> int:
        return sum(counts[by_code[c].name] for c in place.parent_codes if c in by_code)

    candidates = [p for name in counts for p in by_name[name]]
    best = max(candidates, key=lambda p: (counts[p.name] + support(p), p.level, -text.find(p.name)))
    chain = [by_code[c] for c in best.parent_codes if c in by_code and by_code[c].name in counts]
    names = list(dict.fromkeys(p.name for p in chain if p.name != best.name))
    return "".join(names) + best.name


_STRIP_PARTY = re.compile(r"^(?:中共|中国共产党)")


def strip_party(name: str) -> str:
    return _STRIP_PARTY.sub("", name)
