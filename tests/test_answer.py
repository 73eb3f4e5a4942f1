import unicodedata

import pytest

from bot.answer import AnswerComposer
from retriever.numbers import number_values

from .conftest import needs_shared

pytestmark = needs_shared()


def n(s):
    return unicodedata.normalize("NFKC", s)


def test_headline_question(service):
    a = service.composer.answer("重点区域署2023年出具了多少份法律意见书？")
    assert a.found
    assert a.text.startswith("深圳市龙岗区重点区域规划建设管理署（重点区域署）2023年：")
    assert "79件" in a.text
    c = a.citations[0]
    assert "出具法律意见书79件" in c.excerpt
    assert c.source == "002_cdcfa3983a87bb7e.txt" and c.year == 2023
    report = service.index.report_by_id[next(r.id for r in service.index.reports if r.source == c.source)]
    assert report.text[c.start : c.end] == c.excerpt
    a0, a1 = c.mark
    assert c.excerpt[a0:a1] == "出具法律意见书79件"


def test_a_year_with_no_report_is_refused_with_related_excerpts(service):
    a = service.composer.answer("重点区域署2021年出具了多少份法律意见书？")
    assert not a.found
    assert "2021" in a.text and "79" not in a.text
    assert a.searched["reports"] == 0
    assert a.related and a.related[0].year == 2023 and "79件" in a.related[0].excerpt


@pytest.mark.parametrize(
    "question,expected",
    [
        ("重点区域署今年收到多少宗民生诉求，化解了多少？", ["83宗", "79宗"]),
        ("党政办上报省市专报信息多少篇，被采用多少篇？", ["227篇", "178篇"]),
    ],
)
def test_two_asks_get_both_figures(service, question, expected):
    a = service.composer.answer(question)
    assert a.found and all(e in n(a.text) for e in expected)


@pytest.mark.parametrize(
    "question",
    [
        "重点区域署2023年行政处罚了多少宗案件？",
        "国资委2023年办理了多少件行政复议案件？",
        "党政办2023年组织了几次消防演练？",
        "财政局2023年出具了多少份法律意见书？",  # a unit that is not indexed
        "高新区的人口是多少？",
    ],
)
def test_questions_the_reports_do_not_answer_are_refused(service, question):
    a = service.composer.answer(question)
    assert not a.found, a.text
    assert a.text.startswith("未找到")


def test_colloquial_unit_name(service):
    a = service.composer.answer("龙岗那个署出具了多少份法律意见书？")
    assert a.found and "79件" in a.text


def test_metadata_question(service):
    a = service.composer.answer("哪个单位的报告是2022年的？")
    assert a.found and "党群工作部" in a.text and "2022" in a.text
    assert [c.year for c in a.citations] == [2022]


def test_every_number_in_the_lead_is_in_a_citation(service, dev_questions):
    for q in dev_questions:
        a = service.composer.answer(q["question"])
        if not a.found or not a.citations or q["kind"] == "meta":
            continue
        body = a.text.split("：", 1)[1]
        cited = set().union(*(number_values(c.excerpt) for c in a.citations))
        assert number_values(body) <= cited, (q["id"], a.text)


def test_a_lead_with_an_uncited_number_is_refused(service, monkeypatch):
    """The check runs in code: make extraction produce a number the excerpt lacks."""
    original = AnswerComposer._citation

    def doctored(self, *args, **kwargs):
        c = original(self, *args, **kwargs)
        return type(c)(**{**c.__dict__, "excerpt": c.excerpt.replace("79", "七十")})

    monkeypatch.setattr(AnswerComposer, "_citation", doctored)
    a = service.composer.answer("重点区域署2023年出具了多少份法律意见书？")
    assert not a.found


def test_dev_set_targets(service, dev_questions):
    from bot.evaluate import evaluate

    figures = evaluate(service, dev_questions)
    assert figures["hit_at_1"] >= 0.95
    assert figures["hit_at_5"] == 1.0
    assert figures["answer_accuracy"] >= 0.95
    assert figures["citation_accuracy"] >= 0.95
    assert figures["refusal_accuracy"] == 1.0
    assert figures["false_refusal_rate"] == 0.0


@pytest.mark.parametrize("bad", ["", "   ", "问" * 501])
def test_bad_questions_raise_clear_errors(service, bad):
    with pytest.raises(ValueError, match="empty|longer"):
        service.composer.answer(bad)


@pytest.mark.parametrize(
    ("follow", "read_as"),
    [
        ("那2022年呢？", "重点区域署2022年出具了多少份法律意见书？"),  # swaps the year
        ("武清区国资委呢", "武清区国资委2023年出具了多少份法律意见书？"),  # swaps the unit
        ("那宝安区的呢", "宝安区2023年出具了多少份法律意见书？"),
        ("那龙岗区司法局2022年的呢？", "龙岗区司法局2022年出具了多少份法律意见书？"),  # both, a unit not indexed
        ("在龙岗政府在线公开了多少条信息？", "重点区域署2023年在龙岗政府在线公开了多少条信息？"),  # a new ask
        ("2022年收到多少宗民生诉求？", "重点区域署2022年收到多少宗民生诉求？"),  # a new ask, its own year
        ("天津市武清区国资委2023年开展了多少场普法活动？", "天津市武清区国资委2023年开展了多少场普法活动？"),  # standalone
    ],
)
def test_follow_up_questions_take_what_they_leave_out_from_the_question_before(service, follow, read_as):
    assert service.composer.follow_up("重点区域署2023年出具了多少份法律意见书？", follow) == read_as


def test_a_follow_up_never_answers_with_the_previous_years_figure(service):
    a = service.composer.answer(service.composer.follow_up("重点区域署2023年出具了多少份法律意见书？", "那2022年呢？"))
    assert not a.found and "79" not in a.text
