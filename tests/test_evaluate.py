"""`evaluate()` on a small real index: two seed reports and a file that cannot be read, with
question lines of every kind, the cross-report `compare` and a list-valued `meta` among them.

The expected outcomes are chosen so that they do not hang on how good the answers are: a wrong
figure is a question the index answers (a dev question) given an expected string its report does
not hold; a compare question answered from one report cannot hold the other report's figure."""

import json
import shutil

import pytest

from .conftest import REPORTS

GUOZIWEI = "004_7470bc842f3634e7.txt"  # 天津市武清区国资委 2023
ZHONGDIAN = "002_cdcfa3983a87bb7e.txt"  # 深圳市龙岗区重点区域署 2023
LEGAL_OPINIONS = "重点区域署2023年法律顾问出具了多少份法律意见书？"  # dev q01: answered, 79件
STUDY = "国资委中心组全年安排了几次法治相关内容的学习？"  # dev q14: answered, 10次
NO_SUCH_FIGURE = "重点区域署2023年行政处罚了多少宗案件？"  # dev q47: the report does not say

QUESTIONS = [
    # answered right
    {"id": "n1", "question": LEGAL_OPINIONS, "doc": ZHONGDIAN, "answer": ["79件"], "evidence": "出具法律意见书79件",
     "kind": "numeric"},
    {"id": "n2", "question": STUDY, "doc": GUOZIWEI, "answer": ["10次"], "evidence": "全年安排中心组学习法治相关内容10次",
     "kind": "numeric"},
    {"id": "f1", "question": "重点区域署聘请了什么人作为法律顾问？", "doc": ZHONGDIAN, "answer": ["专业律师"],
     "evidence": "聘请专业律师作为法律顾问", "kind": "fact"},
    {"id": "m1", "question": "重点区域署的报告是哪一年的？", "doc": ZHONGDIAN, "answer": ["2023"], "evidence": None,
     "kind": "meta"},
    {"id": "m2", "question": "区国资委和重点区域署的报告分别是哪一年的？", "doc": [GUOZIWEI, ZHONGDIAN], "answer": ["2023"],
     "evidence": ["区国资委2023年度开展法治建设工作情况报告", "2023年区重点区域署坚持"], "kind": "meta"},
    {"id": "u1", "question": NO_SUCH_FIGURE, "doc": None, "answer": [], "evidence": None, "kind": "unanswerable"},
    # answered wrong: a figure the report does not give, and an answer where the key says none
    {"id": "w1", "question": LEGAL_OPINIONS, "doc": ZHONGDIAN, "answer": ["80件"], "evidence": "出具法律意见书79件",
     "kind": "numeric"},
    {"id": "w2", "question": STUDY, "doc": None, "answer": [], "evidence": None, "kind": "unanswerable"},
    # compare: right (one report, as lists), wrong (the other report's figure missing), not answered
    {"id": "c1", "question": LEGAL_OPINIONS, "doc": [ZHONGDIAN], "answer": ["79件"], "evidence": ["出具法律意见书79件"],
     "kind": "compare"},
    {"id": "c2", "question": LEGAL_OPINIONS, "doc": [ZHONGDIAN, GUOZIWEI], "answer": ["79件", "40余次"],
     "evidence": ["出具法律意见书79件", "全年法律顾问累计提供审核意见40余次"], "kind": "compare"},
    {"id": "c3", "question": NO_SUCH_FIGURE, "doc": [ZHONGDIAN, GUOZIWEI], "answer": ["79件", "40余次"],
     "evidence": ["出具法律意见书79件", "全年法律顾问累计提供审核意见40余次"], "kind": "compare"},
]


@pytest.fixture(scope="module")
def small_service(tmp_path_factory, use_embedder, config):
    if not REPORTS.is_dir():
        pytest.skip("../shared/reports is not beside the checkout")
    from bot.service import open_service
    from retriever.ingest import ingest

    folder = tmp_path_factory.mktemp("two-reports")
    for name in (GUOZIWEI, ZHONGDIAN):
        shutil.copy(REPORTS / name, folder / name)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 broken")
    root = tmp_path_factory.mktemp("two-reports-index")
    result = ingest(root, [folder], use_embedder)
    assert [f.path.rsplit("/", 1)[-1] for f in result.failed] == ["broken.pdf"] and result.reports == 2
    return open_service(config, root, embedder=use_embedder)


@pytest.fixture(scope="module")
def figures(small_service, tmp_path_factory):
    from bot.evaluate import evaluate, load_questions

    path = tmp_path_factory.mktemp("questions") / "q.jsonl"
    path.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in QUESTIONS) + "\n", encoding="utf-8")
    return evaluate(small_service, load_questions(path))


def test_wrong_answers_are_counted_over_all_questions(figures):
    causes = {f["id"]: f["cause"] for f in figures["failures"]}
    assert causes["w1"] == "wrong figure" and causes["w2"] == "should refuse" and causes["c2"] == "wrong figure"
    assert causes["c3"] == "false refusal"
    assert not {"n1", "n2", "f1", "m1", "m2", "u1", "c1"} & set(causes), figures["failures"]
    # w1, w2 and c2 answered wrong, of 11 questions; without compare: w1 and w2 of 8
    assert figures["wrong_answer_rate"] == round(3 / 11, 4)
    assert figures["non_compare"]["wrong_answer_rate"] == round(2 / 8, 4) and figures["non_compare"]["n"] == 8
    assert figures["questions"] == 11 and figures["answer_accuracy"] == round(6 / 9, 4)
    assert figures["refusal_accuracy"] == 0.5 and figures["by_kind"]["unanswerable"]["wrong_answer_rate"] == 0.5
    # the order of the failures: the wrong ones first
    order = [f["cause"] for f in figures["failures"]]
    assert order == sorted(order, key=["wrong figure", "should refuse", "false refusal", "citation only",
                                       "retrieval only"].index)
    assert order[:3] == ["wrong figure", "wrong figure", "should refuse"]


def test_compare_and_list_meta_are_scored_never_skipped(figures):
    compare = figures["by_kind"]["compare"]
    assert compare["n"] == 3
    # c1 right; c2 answered with one report's figure only; c3 not answered
    assert compare["answer_accuracy"] == round(1 / 3, 4) and compare["wrong_answer_rate"] == round(1 / 3, 4)
    assert compare["false_refusal_rate"] == round(1 / 3, 4)
    # the citation set must hold each evidence in an excerpt of its own report: only c1's does
    assert compare["citation_accuracy"] == round(1 / 3, 4)
    # the question names one unit, so its search keeps to that report: the other one is never found
    c2 = next(f for f in figures["failures"] if f["id"] == "c2")
    assert f"retrieval: {GUOZIWEI} not in the top 10" in c2["problems"] and "citation" in c2["problems"]
    assert c2["first_citation_source"] == ZHONGDIAN and "79件" in c2["returned"]
    meta = figures["by_kind"]["meta"]
    assert meta["n"] == 2 and meta["answer_accuracy"] == 1.0
    # m2 (lists) is the only meta question with evidence: both reports' evidence found and cited
    assert meta["citation_accuracy"] == 1.0 and meta["hit_at_5"] == 1.0


def test_failed_and_review_reports_come_from_the_index(figures, small_service):
    assert figures["reports_failed"] == 1
    (failed,) = figures["reports_failed_list"]
    assert failed["file"] == "broken.pdf" and "pdf" in failed["reason"]
    sources = {r.source for r in small_service.index.reports}
    assert figures["reports_need_review"] == len(figures["reports_need_review_list"])
    assert {r["file"] for r in figures["reports_need_review_list"]} <= sources


def test_text_output_puts_the_index_problems_first_and_groups_failures(figures):
    from bot.evaluate import format_figures

    text = format_figures(figures)
    lines = text.splitlines()
    assert lines[0] == "!! 1 report failed to index (questions about them cannot be answered):"
    assert lines[1].startswith("!!   broken.pdf: ")
    assert any(line.startswith("non-compare") for line in lines)
    headings = [line.strip() for line in lines if line.startswith("  ") and not line.startswith("    ")]
    assert headings == ["wrong figure (2):", "should refuse (1):", "false refusal (1):"]
    assert "cited (" + ZHONGDIAN + "): " in text


def test_format_names_reports_to_review_and_unknown_years():
    from bot.evaluate import format_problems

    figures = {"reports_failed": 0, "reports_failed_list": [], "reports_need_review": 1,
               "reports_need_review_list": [{"file": "r03.txt", "org": "某区司法局", "year": None,
                                             "reasons": ["no year found in the text"]}]}
    assert format_problems(figures) == [
        "!! 1 report needs a person's check of its metadata:",
        "!!   r03.txt (某区司法局 · 年份不明): needs review: no year found in the text",
    ]


def test_mismatched_lists_are_refused_with_the_line(tmp_path):
    from bot.evaluate import load_questions

    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "x", "question": "?", "answer": ["1"], "doc": ["a", "b"], "evidence": ["e"]}) + "\n",
                    encoding="utf-8")
    with pytest.raises(ValueError, match=r"q.jsonl:1: 2 doc\(s\) but 1 evidence"):
        load_questions(path)
