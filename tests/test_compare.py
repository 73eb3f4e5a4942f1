"""Comparison answers and the facts table, on reports written for the tests: units and years with
known figures, two reports of one unit and year that disagree, and measure words that differ."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.answer import MISSING, TableRow
from bot.compare import comparable, difference, neutral_question, rank_question, read_comparison, total
from retriever.facts import Fact, predicate_object

TEMPLATE = """{unit}{year}年度法治政府建设工作报告

{year}年，{unit}在上级党委、政府的坚强领导下，深入学习贯彻习近平法治思想，扎实推进法治政府建设各项工作，现将有关情况报告如下。

一、主要工作成效
（一）发挥法律顾问作用。{legal}
（二）做好法律援助。{aid}
（三）开展普法宣传。全年开展普法宣传活动{events}场，发放宣传资料{leaflets}份。

二、存在的不足
一是法治宣传的针对性有待增强；二是执法人员的专业能力还需提升。
"""

REPORTS = {
    "qingshi_2022.txt": dict(unit="青石县司法局", year=2022, legal="全年出具法律意见书40件，审查合同25份。",
                             aid="受理法律援助案件85件，挽回经济损失120万元。", events=12, leaflets=3000),
    "qingshi_2023.txt": dict(unit="青石县司法局", year=2023, legal="全年出具法律意见书52件，审查合同31份。",
                             aid="受理法律援助案件120件，挽回经济损失150万元。", events=15, leaflets=3600),
    "baihe_2023.txt": dict(unit="白河县司法局", year=2023, legal="全年出具法律意见书79件，审查合同40份。",
                           aid="受理法律援助案件96件，挽回经济损失98万元。", events=9, leaflets=2000),
    "lvchuan_2023.txt": dict(unit="绿川镇人民政府", year=2023, legal="镇法律顾问全年出具法律意见书40余次。",
                             aid="镇法律援助工作站接待群众来访60人次。", events=6, leaflets=800),
    "hongling_2023_draft.txt": dict(unit="红岭街道办事处", year=2023, legal="全年办理行政复议案件106件。",
                                    aid="街道法律援助工作站接待群众来访30人次。", events=8, leaflets=900),
    "hongling_2023_final.txt": dict(unit="红岭街道办事处", year=2023, legal="全年办理行政复议案件94件。",
                                    aid="街道法律援助工作站接待群众来访30人次。", events=8, leaflets=900),
}


def write_reports(folder, reports=REPORTS):
    folder.mkdir(parents=True, exist_ok=True)
    for name, fields in reports.items():
        (folder / name).write_text(TEMPLATE.format(**fields), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def compare_index(tmp_path_factory, use_embedder):
    from retriever.ingest import ingest

    base = tmp_path_factory.mktemp("compare")
    root = base / "index"
    result = ingest(root, [write_reports(base / "reports")], use_embedder)
    assert not result.failed, result.failed
    return root


@pytest.fixture(scope="module")
def composer(compare_index, config, use_embedder):
    from bot.service import open_service

    return open_service(config, compare_index, embedder=use_embedder).composer


def rows(answer) -> list[tuple]:
    return [(r.unit, r.year, r.value) for r in answer.table]


def test_ranking_orders_the_units_that_state_the_figure(composer):
    a = composer.answer("2023年哪个单位受理的法律援助案件最多？")
    assert a.found, a.text
    assert a.text.startswith("最多的是青石县司法局（120件）"), a.text
    assert [r.value for r in a.table] == ["120件", "96件"]
    assert all(r.unit != "绿川镇人民政府" for r in a.table)  # it states no such figure: not ranked, not filled
    for r in a.table:  # every row cites the sentence its figure is read from
        assert r.value in a.citations[r.citation - 1].excerpt
    least = composer.answer("2023年哪个单位受理的法律援助案件最少？")
    assert least.text.startswith("最少的是白河县司法局（96件）"), least.text


def test_mixed_measure_words_are_not_ranked_as_equals(composer):
    a = composer.answer("2023年哪个单位出具的法律意见书最多？")
    assert not a.found, a.text
    assert "40余次" in a.text and "79件" in a.text
    assert "计量单位不同" in a.text or "约数" in a.text, a.text
    assert "最多的是" not in a.text


def test_side_by_side_with_a_missing_year_says_not_mentioned(composer):
    a = composer.answer("青石县司法局2022年和白河县司法局2022年分别出具了多少件法律意见书？")
    assert ("青石县司法局", 2022, "40件") in rows(a)
    assert ("白河县司法局", 2022, MISSING) in rows(a)
    assert "79件" not in a.text  # never filled from another year
    assert not a.found and MISSING in a.text


def test_year_over_year_shows_checked_arithmetic(composer):
    a = composer.answer("青石县司法局2023年比2022年多出具了多少件法律意见书？")
    assert a.found, a.text
    assert rows(a) == [("青石县司法局", 2023, "52件"), ("青石县司法局", 2022, "40件")]
    assert "多12件（52件 − 40件 = 12件）" in a.text, a.text
    assert {c.year for c in a.citations} == {2022, 2023}


def test_total_over_units(composer):
    a = composer.answer("青石县司法局和白河县司法局2023年一共受理了多少件法律援助案件？")
    assert a.found, a.text
    assert "120件 + 96件 = 216件" in a.text, a.text


def test_two_disagreeing_reports_of_one_unit_and_year(composer):
    a = composer.answer("红岭街道2023年办理了多少件行政复议案件？")
    assert "两份报告数字不一致" in a.text, a.text
    assert {r.value for r in a.table} == {"106件", "94件"}
    assert {c.source for c in a.citations} == {"hongling_2023_draft.txt", "hongling_2023_final.txt"}
    same = composer.answer("红岭街道2023年接待群众来访多少人次？")
    assert "两份报告数字一致" in same.text, same.text


def test_ingest_warns_of_a_second_report_of_a_unit_and_year(tmp_path, use_embedder):
    from retriever.ingest import ingest

    first = write_reports(tmp_path / "a", {k: v for k, v in REPORTS.items() if k == "hongling_2023_draft.txt"})
    ingest(tmp_path / "index", [first], use_embedder)
    second = write_reports(tmp_path / "b", {k: v for k, v in REPORTS.items() if k == "hongling_2023_final.txt"})
    result = ingest(tmp_path / "index", [second], use_embedder)
    (added,) = [f for f in result.files if f.status == "added"]
    assert any("红岭街道办事处" in w and "2023" in w and "hongling_2023_draft.txt" in w for w in added.warnings), added


def test_facts_switch_with_the_generation(tmp_path, use_embedder):
    """A loaded generation keeps its facts while a new one is built; the new one has the new
    figures and none of the removed report's."""
    from retriever.index import Index, IndexDir
    from retriever.ingest import ingest

    folder = write_reports(tmp_path / "reports", {k: REPORTS[k] for k in ("qingshi_2023.txt", "baihe_2023.txt")})
    root = tmp_path / "index"
    ingest(root, [folder], use_embedder)
    old = Index(IndexDir(root).current_path(), use_embedder.name, use_embedder.dim)
    changed = dict(REPORTS["qingshi_2023.txt"], legal="全年出具法律意见书57件，审查合同31份。")
    write_reports(folder, {"qingshi_2023.txt": changed})
    (folder / "baihe_2023.txt").unlink()
    ingest(root, [folder], use_embedder, prune=True)
    new = Index(IndexDir(root).current_path(), use_embedder.name, use_embedder.dim, reuse=old)

    def opinions(index):
        return sorted(f.text for f in index.facts(range(index.size)) if f.object == "法律意见书")

    assert opinions(old) == ["52件", "79件"]
    assert opinions(new) == ["57件"]


def test_facts_table_reads_figures_with_what_they_count(compare_index, use_embedder):
    from retriever.index import Index, IndexDir

    index = Index(IndexDir(compare_index).current_path(), use_embedder.name, use_embedder.dim)
    facts = index.facts(range(index.size))
    by = {(index.report_by_id[f.report_id].source, f.text): f for f in facts}
    f = by[("qingshi_2023.txt", "52件")]
    assert (f.predicate, f.object, f.measure, f.kind) == ("出具", "法律意见书", "件", "count")
    assert index.report_by_id[f.report_id].text[f.start : f.end] == "52件"
    assert "出具法律意见书52件" in index.report_by_id[f.report_id].text[f.clause_start : f.clause_end]
    approx = by[("lvchuan_2023.txt", "40余次")]
    assert "余" in approx.qualifiers and approx.approximate
    money = by[("qingshi_2023.txt", "150万元")]
    assert (money.value, money.measure, money.kind) == (1_500_000, "元", "money")


@pytest.mark.parametrize("before, after, expected", [
    ("全年出具法律意见书", "", ("出具", "法律意见书")),
    ("全年行政复议案件同比增长", "", ("增长", "行政复议案件")),
    ("举办", "专题讲座", ("举办", "专题讲座")),
    ("其中公务员", "", ("", "公务员")),
    ("群众满意率达到", "", ("", "群众满意率")),
    ("完成电子证照签发", "", ("签发", "电子证照")),
])
def test_predicate_and_object(before, after, expected):
    assert predicate_object(before, after) == expected


def _row(value: str, number: float, measure: str, qualifiers=(), kind="count") -> TableRow:
    fact = Fact("r", 0, number, None, value, measure, measure, kind, tuple(qualifiers), "", "", "", 0, 0, 0, 0, 0, 0)
    return TableRow("单位", 2023, value, measure, 1, "", fact)


def test_arithmetic_is_checked_against_the_figures_as_written():
    assert difference(_row("146份", 146, "份"), _row("120份", 120, "份")) == (Decimal(26), "146份 − 120份 = 26份")
    assert total([_row("63.03%", 63.03, "%"), _row("1.79%", 1.79, "%")])[0] == Decimal("64.82")
    with pytest.raises(ValueError):
        difference(_row("146份", 147, "份"), _row("120份", 120, "份"))  # the row's value is not its text's


def test_what_may_be_compared():
    assert comparable([_row("79件", 79, "件"), _row("14起", 14, "起")]) == ""  # 件 and 起 count cases alike
    assert "计量单位不同" in comparable([_row("79件", 79, "件"), _row("40次", 40, "次")])
    assert "约数" in comparable([_row("79件", 79, "件"), _row("40余件", 40, "件", ["余"])])
    assert "口径不同" in comparable([_row("79件", 79, "件"), _row("300件", 300, "件", ["累计"])])


def test_reading_a_comparison():
    assert read_comparison("2023年哪个单位出具的法律意见书最多？", 0).kind == "rank"
    assert read_comparison("2023年哪个单位出具的法律意见书最少？", 0).most is False
    assert read_comparison("钱塘区2024年比2023年多审了多少份合同？", 2).kind == "change"
    assert read_comparison("两个区2022年一共办了多少件？", 2).kind == "total"
    assert read_comparison("长寿卫健委2022年一共办结多少件许可申请？", 1).kind == ""  # one unit: a plain figure
    assert neutral_question("钱塘区2024年比2023年多审了多少份合同？") == "钱塘区2024年和2023年审了多少份合同？"
    assert rank_question("2023年哪个单位出具的法律意见书最多？") == "2023年出具的法律意见书多少？"


def test_every_unit_of_a_kind(composer):
    a = composer.answer("两个县司法局2023年分别受理了多少件法律援助案件？")
    assert a.found, a.text
    assert sorted(rows(a)) == [("白河县司法局", 2023, "96件"), ("青石县司法局", 2023, "120件")]
    ranked = composer.answer("2023年哪个县司法局出具的法律意见书最多？")  # 绿川镇's 40余次 is no 县司法局's
    assert ranked.found, ranked.text
    assert ranked.text.startswith("最多的是白河县司法局（79件）"), ranked.text
    assert [r.value for r in ranked.table] == ["79件", "52件"]


def test_catalog_questions_list_the_reports_in_a_table(composer):
    a = composer.answer("2022年的报告有几份？分别是哪些单位的？")
    assert a.found and a.text.startswith("青石县司法局2022年的报告"), a.text
    b = composer.answer("2023年的报告有几份？分别是哪些单位的？")
    assert b.text.startswith("共5份"), b.text
    assert sorted(r.unit for r in b.table) == ["白河县司法局", "红岭街道办事处", "红岭街道办事处", "绿川镇人民政府", "青石县司法局"]
    assert [r.citation for r in b.table] == [1, 2, 3, 4, 5]


def test_a_figure_one_of_two_reports_of_a_unit_and_year_gives_answers(tmp_path, use_embedder, config):
    from bot.service import open_service
    from retriever.ingest import ingest

    other = dict(REPORTS["hongling_2023_final.txt"], legal="全年组织法治讲座12场。")
    folder = write_reports(tmp_path / "r", {"draft.txt": REPORTS["hongling_2023_draft.txt"], "final.txt": other})
    ingest(tmp_path / "index", [folder], use_embedder)
    composer = open_service(config, tmp_path / "index", embedder=use_embedder).composer
    a = composer.answer("红岭街道2023年办理了多少件行政复议案件？")
    assert a.found and "106件" in a.text, a.text
    assert ("红岭街道办事处（final.txt）", 2023, MISSING) in rows(a)
    assert "不一致" not in a.text
