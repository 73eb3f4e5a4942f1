"""retriever/thesaurus.txt and its loader: the file's shape, the relations it must not contain, the
loader's functions, and that the official terms are the reports' own words."""

from __future__ import annotations

import pytest

from retriever import thesaurus as th

from .conftest import REPORTS, SAMPLES, SHARED

# Strong groups the file should hold: fewer would leave common topics of the reports uncovered,
# more than this means lines were added for count rather than checked one by one.
MIN_STRONG_GROUPS = 300
MAX_STRONG_GROUPS = 600
# Share of strong groups whose official term occurs verbatim in the seed and development reports.
# Half: the file also covers topics (卫生健康, 教育, 人社 …) that these 21 reports mention little,
# but an official term should be the reports' own wording more often than not.
ATTESTED_FLOOR = 0.5


@pytest.fixture(scope="module")
def book() -> th.Thesaurus:
    return th.load()


def strong_groups(book):
    return [g for g in book.groups if not g.related]


def test_file_parses_into_groups_of_two_or_more_words(book):
    strong = strong_groups(book)
    weak = [g for g in book.groups if g.related]
    print(f"\n{len(strong)} strong groups, {len(weak)} related lines, {len(book.terms)} terms")
    assert MIN_STRONG_GROUPS <= len(strong) <= MAX_STRONG_GROUPS
    assert weak
    for g in book.groups:
        assert g.terms, g
        for term in (g.head, *g.terms):
            assert len(term) >= th.MIN_TERM_CHARS and not any(c.isspace() for c in term), (g.line, term)


def test_no_word_in_two_strong_groups(book):
    """Counted from the raw groups, not through the loader's own check."""
    seen: dict[str, str] = {}
    clashes = []
    for g in strong_groups(book):
        for term in (g.head, *g.terms):
            if term in seen and seen[term] != g.head:
                clashes.append((term, seen[term], g.head))
            seen.setdefault(term, g.head)
    assert not clashes


def test_related_lines_name_known_or_new_words_but_never_repeat_the_head(book):
    for g in book.groups:
        if g.related:
            assert g.head not in g.terms
            # a related pair inside one strong group would be a contradiction
            assert not any(t in book.equivalents(g.head) for t in g.terms), g


def test_parse_rejects_malformed_lines_and_conflicts():
    with pytest.raises(ValueError, match="line 2"):
        th.parse("# comment\n诉讼 打官司\n")  # no TAB
    with pytest.raises(ValueError, match="at least one other word"):
        th.parse("诉讼\t\n")
    with pytest.raises(ValueError, match="shorter"):
        th.parse("罚款\t罚 罚钱\n")
    with pytest.raises(ValueError, match="already in the strong group"):
        th.Thesaurus(th.parse("诉讼\t打官司\n行政诉讼\t打官司\n"))
    # a word may be in a strong group and in any number of related lines
    book = th.Thesaurus(th.parse("诉讼\t打官司\n~诉讼\t行政诉讼\n~罚款\t打官司\n"))
    assert book.equivalents("打官司") == {"诉讼", "打官司"}


def test_strong_groups_are_symmetric(book):
    for g in strong_groups(book):
        members = {g.head, *g.terms}
        for term in members:
            assert book.equivalents(term) == members
            assert book.official(term) == g.head


def test_everyday_words_reach_the_official_terms():
    pairs = {
        "打官司": "诉讼",
        "被告上法庭": "诉讼",
        "民告官": "行政诉讼",
        "请律师": "法律顾问",
        "上门查": "检查",
        "开会研究": "专题研究",
        "罚了多少钱": "罚款",
        "告状": "信访",
        "投诉": "投诉举报",
        "审合同": "合同审查",
        "学习法律法规": "学法",
        "办事": "政务服务",
        "老百姓": "群众",
    }
    for everyday, official in pairs.items():
        assert official in th.equivalents(everyday), everyday
        assert everyday in th.equivalents(official), official


def test_words_that_name_different_figures_stay_apart():
    apart = [
        ("行政复议", "行政诉讼"),
        ("受理", "办结"),
        ("罚款", "罚没"),
        ("检查", "抽查"),
        ("信访", "投诉举报"),
        ("集体学法", "学法"),
        ("合格率", "通过率"),
        ("行政审批", "行政许可"),
        ("出庭应诉率", "负责人出庭应诉"),
    ]
    for a, b in apart:
        assert b not in th.equivalents(a), (a, b)


def test_related_is_weak_symmetric_and_disjoint_from_equivalents():
    assert "罚没" in th.related("罚款") and "罚款" in th.related("罚没")
    assert "抽查" in th.related("检查")
    # through the strong group: 打官司 is 诉讼, and 行政诉讼 is narrower than 诉讼
    assert "行政诉讼" in th.related("打官司")
    assert "民告官" in th.related("打官司")
    # a ~ line relates its head to each word, not the words to one another
    assert "警告" not in th.related("罚款")
    for word in ("诉讼", "罚款", "检查", "学法", "信访", "法律顾问"):
        assert not th.related(word) & th.equivalents(word)
    assert th.related("一个不在词表里的词") == frozenset()


def test_unknown_words_are_their_own_group():
    assert th.equivalents("不在词表里") == {"不在词表里"}
    assert th.official("不在词表里") is None
    # compared after NFKC and lower case
    assert th.official("１２３４５热线") == "12345热线"


def test_expand_weights():
    w = th.expand(["打官司", "复印"])
    assert w["打官司"] == w["诉讼"] == w["被告上法庭"] == w["复印"] == 1.0
    assert w["行政诉讼"] == th.RELATED_WEIGHT
    assert "行政复议" not in w
    assert list(w)[:2] == ["打官司", "复印"]
    # a word that is both an equivalent of one word and related to another keeps the full weight
    both = th.expand(["行政诉讼", "打官司"])
    assert both["行政诉讼"] == 1.0 and both["民告官"] == 1.0
    assert th.expand([]) == {}
    assert 0 < th.RELATED_WEIGHT < 0.5


def test_phrases_in_finds_phrases_jieba_cuts():
    from retriever.tokenize import get_tokenizer

    question = "去年被告上法庭几次，一共罚了多少钱？"
    assert len(get_tokenizer().words("被告上法庭")) > 1
    assert len(get_tokenizer().words("罚了多少钱")) > 1
    found = th.phrases_in(question)
    assert [t for _, _, t in found] == ["被告上法庭", "一共", "罚了多少钱"]
    for start, end, term in found:
        assert question[start:end] == term


def test_phrases_in_longest_first_non_overlapping_in_text_order():
    text = "行政诉讼案件3件，行政复议8起"
    found = th.phrases_in(text)
    assert [t for _, _, t in found] == ["行政诉讼案件", "行政复议"]
    assert all(a[1] <= b[0] for a, b in zip(found, found[1:], strict=False))
    # positions are the original text's, also where NFKC changes a character
    text = "各村（社区）法律顾问全年"
    (start, end, term), *_ = th.phrases_in(text)
    assert term == "村(社区)法律顾问" and text[start:end] == "村（社区）法律顾问"
    assert th.phrases_in("") == []


def report_texts() -> list[str]:
    dirs = [REPORTS, SHARED / "dev_reports", SAMPLES]
    return [
        p.read_text(encoding="utf-8", errors="replace")
        for d in dirs
        if d.is_dir()
        for p in sorted(d.iterdir())
        if p.suffix in (".txt", ".html") and not p.name.startswith("SOURCES")
    ]


def test_official_terms_are_the_reports_own_words(book):
    texts = report_texts()
    assert texts
    corpus = th.fold("\n".join(texts))
    strong = strong_groups(book)
    attested = [g.head for g in strong if g.head in corpus]
    share = len(attested) / len(strong)
    print(f"\nofficial term found in the reports for {len(attested)}/{len(strong)} groups ({share:.0%})")
    if REPORTS.is_dir():
        assert share >= ATTESTED_FLOOR
