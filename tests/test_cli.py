import json
import os
import subprocess
import sys

from .conftest import DEV, REPO, REPORTS, SAMPLES, needs_shared


def govqa(*args, cwd=None, env=None):
    # PYTHONPATH: this checkout's code also when the command runs in another folder
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, timeout=600)


def test_ingest_search_ask_on_samples(tmp_path):
    index = str(tmp_path / "idx")
    r = govqa("ingest", str(SAMPLES), "--index", index)
    assert r.returncode == 0, r.stderr
    assert "5 reports" in r.stdout
    r = govqa("reports", "--index", index, "--json")
    rows = json.loads(r.stdout)
    assert {row["year"] for row in rows} == {2022, 2023} and all(row["passages"] > 0 for row in rows)
    r = govqa("search", "重点区域署2023年出具了多少份法律意见书", "--index", index, "--json", "-k", "3")
    hits = json.loads(r.stdout)["hits"]
    assert "出具法律意见书79件" in hits[0]["text"]
    r = govqa("ask", "重点区域署2023年出具了多少份法律意见书？", "--index", index, "--json")
    answer = json.loads(r.stdout)
    assert answer["found"] and "79件" in answer["answer"]
    assert set(answer["citations"][0]) >= {"source", "title", "org", "year", "section", "excerpt", "start", "end", "score"}


def test_ingest_exits_1_when_a_file_fails_and_keeps_the_others(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.pdf").write_bytes(b"%PDF-1.4 broken")
    (folder / "ok.txt").write_text((SAMPLES / "guoziwei_2023.txt").read_text(encoding="utf-8"), encoding="utf-8")
    r = govqa("ingest", str(folder), "--index", str(tmp_path / "idx"), "--json")
    assert r.returncode == 1
    files = {f["path"].split("/")[-1]: f for f in json.loads(r.stdout)["files"]}
    assert files["ok.txt"]["status"] == "added" and files["bad.pdf"]["status"] == "failed"


def test_config_errors_and_env_overrides(tmp_path):
    r = govqa("ask", "问题", "--index", str(tmp_path / "none"))
    assert r.returncode == 2 and "no index" in r.stderr
    r = govqa("ask", "问题", env={"GOVQA_SEARCH__NOPE": "1"})
    assert r.returncode == 2 and "GOVQA_SEARCH__NOPE" in r.stderr
    r = govqa("ingest", str(SAMPLES), "--index", str(tmp_path / "bad"), env={"GOVQA_SEARCH__FAISS_ANN": "annoy"})
    assert r.returncode == 2 and "ivf, hnsw, got 'annoy'" in r.stderr and not (tmp_path / "bad" / "CURRENT").exists()
    r = govqa("ingest", str(SAMPLES), env={"GOVQA_INDEX__DIR": str(tmp_path / "envidx"), "GOVQA_EMBEDDER__NAME": "hashing"})
    assert r.returncode == 0 and (tmp_path / "envidx" / "CURRENT").exists()


@needs_shared()
def test_eval_command_prints_the_figures(tmp_path):
    r = govqa("eval", str(DEV), "--reports", str(REPORTS), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout)
    for key in ("hit_at_1", "hit_at_5", "mrr_at_10", "answer_accuracy", "citation_accuracy", "refusal_accuracy",
                "false_refusal_rate", "wrong_answer_rate", "reports_failed", "reports_need_review"):
        assert key in figures
    assert figures["answer_accuracy"] >= 0.95 and figures["refusal_accuracy"] == 1.0
    assert figures["wrong_answer_rate"] == 0.0 and figures["reports_failed"] == 0


def test_eval_says_first_which_reports_failed_also_from_a_reused_index(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.pdf").write_bytes(b"%PDF-1.4 broken")
    (folder / "ok.txt").write_text((SAMPLES / "zhongdianquyu_2023.txt").read_text(encoding="utf-8"), encoding="utf-8")
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "a", "question": "重点区域署2023年出具了多少份法律意见书？", "doc": "ok.txt",
                                     "answer": ["79件"], "evidence": "出具法律意见书79件", "kind": "numeric"},
                                    ensure_ascii=False) + "\n", encoding="utf-8")
    first = govqa("eval", str(questions), "--reports", str(folder), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "!! 1 report failed to index (questions about them cannot be answered):"
    assert lines[1].startswith("!!   bad.pdf: not a readable .pdf file")
    # the second run reuses the cached index (no new generation) and still says so, from its ingest log
    again = govqa("eval", str(questions), "--reports", str(folder), "--json", cwd=tmp_path)
    figures = json.loads(again.stdout)
    assert figures["generation"] == "g000001" and len(list((tmp_path / ".govqa-cache").iterdir())) == 1
    assert figures["reports_failed"] == 1 and figures["reports_failed_list"][0]["file"] == "bad.pdf"
    assert figures["answer_accuracy"] == 1.0 and figures["wrong_answer_rate"] == 0.0


# A report that names neither its unit nor its year: indexed, with what a person should check
NAMELESS = ("本单位法治政府建设工作情况报告如下。全年办理行政处罚案件146件，罚没款合计83.5万元，重大执法决定法制审核率达到100%。"
            "组织开展行政执法案卷评查2次，评查案卷60卷。\n")


def test_reports_whose_metadata_needs_review_are_shown_by_ingest_reports_and_eval(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "nameless.txt").write_text(NAMELESS, encoding="utf-8")
    (folder / "ok.txt").write_text((SAMPLES / "zhongdianquyu_2023.txt").read_text(encoding="utf-8"), encoding="utf-8")
    index = str(tmp_path / "idx")
    r = govqa("ingest", str(folder), "--index", index)
    assert r.returncode == 0, r.stderr
    line = next(i for i, text in enumerate(r.stdout.splitlines()) if "nameless.txt" in text)
    assert "单位不明 · 年份不明" in r.stdout.splitlines()[line]
    assert r.stdout.splitlines()[line + 1].strip().startswith("needs review: no year")
    assert r.stdout.rstrip().endswith("0 failed; 1 need review")
    r = govqa("reports", "--index", index)
    assert "年份不明" in r.stdout and "needs review: " in r.stdout and "1 of 2 reports need review" in r.stdout
    rows = {row["source"]: row for row in json.loads(govqa("reports", "--index", index, "--json").stdout)}
    assert rows["nameless.txt"]["year"] is None and rows["nameless.txt"]["review"] and not rows["ok.txt"]["review"]
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "u", "question": "重点区域署2023年行政处罚了多少宗案件？", "doc": None, "answer": [],
                                     "evidence": None, "kind": "unanswerable"}, ensure_ascii=False) + "\n", encoding="utf-8")
    r = govqa("eval", str(questions), "--reports", str(folder), "--index", index)
    lines = r.stdout.splitlines()
    assert lines[0] == "!! 1 report needs a person's check of its metadata:"
    assert lines[1].startswith("!!   nameless.txt (单位不明 · 年份不明): needs review: no year")
