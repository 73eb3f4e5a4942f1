import pytest

from retriever.chunking import MAX_CHARS, chunk_report, heading_level
from retriever.ingest import parse_report
from retriever.tokenize import get_tokenizer

from .conftest import REPORTS, SAMPLES, needs_shared

EXPECTED = {
    "000_664a3152b5d6de2d.txt": ("珠海高新技术产业开发区党群工作部", 2022, "党群工作部", "2022-12-28"),
    "001_a601106507d35663.txt": ("珠海高新技术产业开发区党政办公室", 2023, "党政办", "2023-11-21"),
    "002_cdcfa3983a87bb7e.txt": ("深圳市龙岗区重点区域规划建设管理署", 2023, "重点区域署", None),
    "003_c71c3cfda82aea0c.txt": ("海安高新技术产业开发区", 2023, "海安高新区", "2024-03-19"),
    "004_7470bc842f3634e7.txt": ("天津市武清区国资委", 2023, "国资委", None),
}


@needs_shared()
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metadata_of_the_real_reports(name):
    org, year, alias, published = EXPECTED[name]
    report = parse_report(REPORTS / name)
    assert report.org == org
    assert report.year == year
    assert alias in report.aliases
    assert report.published == published
    assert report.title


@needs_shared()
def test_region_and_unit_aliases():
    report = parse_report(REPORTS / "004_7470bc842f3634e7.txt")
    assert report.region == "天津市武清区"
    assert "武清区国资委" in report.aliases
    assert "龙岗区重点区域署" in parse_report(REPORTS / "002_cdcfa3983a87bb7e.txt").aliases


def test_manifest_overrides_fields_and_supplies_a_missing_year(tmp_path):
    from retriever.ingest import _manifest_for

    path = tmp_path / "r.txt"
    path.write_text("区统计局坚持依法统计，全面推进法治建设。全年开展统计执法检查15次。\n", encoding="utf-8")
    report = parse_report(path)  # indexed with what is known, flagged for a person's check
    assert report.year is None
    assert any("no year" in r for r in report.review)
    assert "year" not in {s[0] for s in report.spans}
    (tmp_path / "reports.toml").write_text('["r.txt"]\nyear = 2022\norg = "某市某区统计局"\naliases = ["统计局"]\n', encoding="utf-8")
    report = parse_report(path, _manifest_for(path, {}, {}))
    assert (report.year, report.org, report.aliases) == (2022, "某市某区统计局", ("统计局",))
    assert report.review == ()  # the manifest gave what was missing
    assert not {"org", "year"} & {s[0] for s in report.spans}


def test_a_manifest_url_is_kept_and_a_bad_one_names_the_file_and_field(tmp_path):
    from retriever.ingest import _manifest_for, load_manifest

    path = tmp_path / "r.txt"
    path.write_text("某区统计局2023年法治政府建设年度报告\n全年开展统计执法检查15次。\n", encoding="utf-8")
    assert parse_report(path).url == ""
    (tmp_path / "reports.toml").write_text('["r.txt"]\nurl = "https://www.example.gov.cn/tjj/2024/1.html"\n',
                                           encoding="utf-8")
    assert parse_report(path, _manifest_for(path, {}, {})).url == "https://www.example.gov.cn/tjj/2024/1.html"
    (tmp_path / "reports.toml").write_text('["r.txt"]\nurl = "javascript:alert(1)"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"reports.toml: \[r.txt\] url must be an http\(s\) address"):
        load_manifest(tmp_path / "reports.toml")


@needs_shared()
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chunks_point_into_the_report_text(name):
    report = parse_report(REPORTS / name)
    passages = chunk_report(report)
    assert passages
    for p in passages:
        assert report.text[p.start : p.end] == p.text
        assert len(p.text) <= MAX_CHARS
        first_line = p.text.split("\n")[0]
        # a heading line alone is never a passage: it is the section of the content under it
        assert not (heading_level(first_line) and p.text == first_line and len(first_line) < 40 and "。" not in first_line[:-1])
    assert len({p.id for p in passages}) == len(passages)
    sizes = sorted(len(p.text) for p in passages)
    assert sizes[len(sizes) // 2] >= 100  # most passages are of a useful size


def test_headings_become_the_section_path(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text(
        "某区司法局2023年法治政府建设年度报告\n2023年，区司法局坚持依法行政。\n一、主要举措\n（一）加强法律顾问工作\n"
        "一是聘请法律顾问2名。二是出具法律意见书30件。\n（二）推进政务公开\n公开政府信息120条。\n某区司法局\n2024年1月5日\n",
        encoding="utf-8",
    )
    report = parse_report(path)
    passages = chunk_report(report)
    by_text = {p.text: p.section for p in passages}
    assert by_text["一是聘请法律顾问2名。二是出具法律意见书30件。"] == "一、主要举措 > （一）加强法律顾问工作"
    assert any(s.endswith("（二）推进政务公开") for t, s in by_text.items() if "120条" in t)
    assert not any(p.text.startswith(("一、", "（一）", "（二）")) for p in passages)


@pytest.mark.parametrize("term", ["法律意见书", "合法性审查", "三重一大", "放管服", "行政复议", "民生诉求"])
def test_user_dictionary_keeps_government_terms_whole(term):
    assert term in get_tokenizer().words(f"今年完成{term}相关工作")



def test_names_in_finds_what_a_scan_of_the_whole_table_finds():
    from retriever.places import _table, names_in

    every = [n for n in _table()[0] if len(n) >= 3]
    found = set()
    for path in sorted(SAMPLES.iterdir()):
        text = path.read_text(encoding="utf-8")
        assert names_in(text) == {n for n in every if n in text}
        found |= names_in(text)
    assert {"天津市", "武清区", "龙岗区"} <= found
