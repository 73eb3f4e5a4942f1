"""The thesaurus of report vocabulary (retriever/thesaurus.txt): the official terms of 法治政府建设
reports with the everyday words people type for them (打官司 for 诉讼, 请律师 for 法律顾问).

Two relations:
- strong groups (`official<TAB>eq1 eq2 …`): every word of a group stands for every other;
- weak lines (`~head<TAB>w1 w2 …`): head is related to each listed word (broader, narrower or
  sibling), and through them to their strong groups; the listed words are not related to one another.

A word may sit in one strong group only: a second one is an error when the file is read (an
ambiguous word would expand to two meanings, and the bot could cite the other one's figure).
Terms are compared after NFKC normalisation and lower-casing, done one character at a time so
that a position in a normalised text is the position in the original text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

# Weight of a related (broader or narrower) word in expand(). A related word is evidence about the
# topic but may name a different figure (行政诉讼 for 诉讼, 罚没 for 罚款), so a passage that
# matches only related words must rank below one that matches the question's own word or an
# equivalent (weight 1.0). Below 0.5, two related matches (0.8) still do not outweigh one direct
# match; above 0.25, a related word still counts for more than a stray character bigram would.
RELATED_WEIGHT = 0.4
RELATED_MARK = "~"
COMMENT_MARK = "#"
MIN_TERM_CHARS = 2  # a one-character term (罚, 查) would match inside half the words of a report


def _fold_char(ch: str) -> str:
    """NFKC and lower case of one character, kept only when it stays one character (so positions hold)."""
    folded = unicodedata.normalize("NFKC", ch).lower()
    return folded if len(folded) == 1 else ch


def fold(text: str) -> str:
    """The form terms and texts are compared in; same length as text."""
    return "".join(_fold_char(ch) for ch in text)


@dataclass(frozen=True)
class Group:
    """One line of the file: the first term, the others, whether it is a weak (`~`) line, its line number."""

    head: str
    terms: tuple[str, ...]
    related: bool
    line: int


@dataclass
class Thesaurus:
    groups: list[Group]
    _strong: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _official: dict[str, str] = field(default_factory=dict, repr=False)
    _weak: dict[str, set[str]] = field(default_factory=dict, repr=False)
    _terms_by_first: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _terms: frozenset[str] = field(default_factory=frozenset, repr=False)

    def __post_init__(self) -> None:
        for g in self.groups:
            if g.related:
                continue
            members = frozenset((g.head, *g.terms))
            for term in members:
                if term in self._official:
                    raise ValueError(
                        f"line {g.line}: {term!r} is already in the strong group of {self._official[term]!r}"
                    )
                self._official[term] = g.head
                self._strong[term] = members
        for g in self.groups:
            if not g.related:
                continue
            for term in g.terms:
                self._weak.setdefault(g.head, set()).add(term)
                self._weak.setdefault(term, set()).add(g.head)
        all_terms = {t for g in self.groups for t in (g.head, *g.terms)}
        self._terms = frozenset(all_terms)
        lengths: dict[str, set[int]] = {}
        for t in all_terms:
            lengths.setdefault(t[0], set()).add(len(t))
        self._terms_by_first = {c: tuple(sorted(ls, reverse=True)) for c, ls in lengths.items()}

    @property
    def terms(self) -> frozenset[str]:
        return self._terms

    def official(self, word: str) -> str | None:
        """The official term of word's strong group, or None when word is in none."""
        return self._official.get(fold(word.strip()))

    def equivalents(self, word: str) -> frozenset[str]:
        w = fold(word.strip())
        return self._strong.get(w, frozenset((w,)))

    def related(self, word: str) -> frozenset[str]:
        """Words weakly related to word or to one of its equivalents, with their own equivalents;
        never one of word's equivalents."""
        own = self.equivalents(word)
        out: set[str] = set()
        for e in own:
            for r in self._weak.get(e, ()):
                out |= self.equivalents(r)
        return frozenset(out - own)

    def expand(self, words) -> dict[str, float]:
        """Each word and its equivalents at 1.0, related words at RELATED_WEIGHT (a word reached
        both ways keeps 1.0). Order: the words, then their equivalents, then related words."""
        weights: dict[str, float] = {}
        words = [fold(w.strip()) for w in words if w and w.strip()]
        for w in words:
            weights[w] = 1.0
        for w in words:
            for e in sorted(self.equivalents(w)):
                weights[e] = 1.0
        for w in words:
            for r in sorted(self.related(w)):
                weights.setdefault(r, RELATED_WEIGHT)
        return weights

    def phrases_in(self, text: str) -> list[tuple[int, int, str]]:
        """Every thesaurus term in text as (start, end, term), end exclusive, in text order; where
        matches overlap the longest wins (then the leftmost), so 行政诉讼 is found, not 诉讼 in it.
        Finds the phrases jieba would cut in pieces (被告上法庭, 罚了多少钱)."""
        folded = fold(text)
        found: list[tuple[int, int, str]] = []
        for i, ch in enumerate(folded):
            for n in self._terms_by_first.get(ch, ()):
                piece = folded[i : i + n]
                if len(piece) == n and piece in self._terms:
                    found.append((i, i + n, piece))
        found.sort(key=lambda m: (m[0] - m[1], m[0]))
        taken = [False] * len(folded)
        chosen = []
        for start, end, term in found:
            if not any(taken[start:end]):
                taken[start:end] = [True] * (end - start)
                chosen.append((start, end, term))
        return sorted(chosen)


def parse(text: str) -> list[Group]:
    """The groups of a thesaurus file; ValueError (with the line number) on a malformed line."""
    groups = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n").lstrip("\ufeff ")
        if not line.strip() or line.startswith(COMMENT_MARK):
            continue
        is_related = line.startswith(RELATED_MARK)
        if is_related:
            line = line[len(RELATED_MARK) :]
        head, tab, rest = line.partition("\t")
        if not tab:
            raise ValueError(f"line {number}: no TAB between the head term and its words")
        head = fold(head.strip())
        terms = tuple(dict.fromkeys(fold(t) for t in rest.split()))
        if not head or " " in head or not terms:
            raise ValueError(f"line {number}: a group needs one head term and at least one other word")
        for t in (head, *terms):
            if len(t) < MIN_TERM_CHARS:
                raise ValueError(f"line {number}: {t!r} is shorter than {MIN_TERM_CHARS} characters")
        if head in terms:
            raise ValueError(f"line {number}: {head!r} lists itself")
        groups.append(Group(head, terms, is_related, number))
    return groups


def thesaurus_path():
    return resources.files("retriever").joinpath("thesaurus.txt")


def load(path: str | Path | None = None) -> Thesaurus:
    """The thesaurus in path, or the bundled one (read once and cached)."""
    if path is None:
        return _bundled()
    return Thesaurus(parse(Path(path).read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def _bundled() -> Thesaurus:
    return Thesaurus(parse(thesaurus_path().read_text(encoding="utf-8")))


def equivalents(word: str) -> frozenset[str]:
    """word's strong group (word itself included; {word} when it is in none)."""
    return _bundled().equivalents(word)


def official(word: str) -> str | None:
    """The official term of word's strong group, or None when word is in none."""
    return _bundled().official(word)


def related(word: str) -> frozenset[str]:
    return _bundled().related(word)


def expand(words) -> dict[str, float]:
    return _bundled().expand(words)


def phrases_in(text: str) -> list[tuple[int, int, str]]:
    return _bundled().phrases_in(text)
