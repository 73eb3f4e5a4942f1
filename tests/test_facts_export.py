"""Facts exports: GET /v1/facts (JSON and CSV) over real HTTP on 127.0.0.1 and `govqa facts` as a
subprocess, both on a real index (the real embedder, FAISS) of the bundled sample reports."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import subprocess
import sys

import httpx
import pytest

from bot.api import Keys, create_app
from bot.facts import FACT_FIELDS
from bot.live import LiveService

from .conftest import REPO, SAMPLES, ServerThread

READ = "read-key-for-the-facts-tests"
ORG = "深圳市龙岗区重点区域规划建设管理署"


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory, use_embedder):
    from retriever.ingest import ingest

    root = tmp_path_factory.mktemp("facts-index")
    result = ingest(root, [SAMPLES], use_embedder)
    assert not result.failed, result.failed
    return root


@pytest.fixture(scope="module")
def server(config, sample_index, use_embedder):
    config = copy.deepcopy(config)
    config["api"]["rate_per_second"] = 0
    live = LiveService(config, sample_index, embedder=use_embedder, poll_seconds=60)
    with ServerThread(create_app(config, live, Keys([READ], []))) as s:
        yield s


def _get(server, key=READ, **params) -> httpx.Response:
    return httpx.get(server.url + "/v1/facts", params=params, headers={"X-API-Key": key} if key else {}, timeout=60)


def _the_79(facts: list[dict]) -> dict:
    return next(f for f in facts if f["org"] == ORG and str(f["year"]) == "2023" and f["value"] == "79件"
                and "出具法律意见书79件" in f["clause"])


def test_facts_json_lists_the_79_legal_opinions_with_their_clause(server):
    r = _get(server, q="法律意见书")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"query", "facts", "searched", "why"} and body["query"] == "法律意见书"
    fact = _the_79(body["facts"])
    assert set(fact) == set(FACT_FIELDS)
    assert fact["number"] == 79 and fact["measure"] == "件" and fact["object"] == "法律意见书"
    assert fact["source"] == "zhongdianquyu_2023.txt" and fact["end"] - fact["start"] == len("79件")
    assert body["searched"]["reports"] == 5 and body["why"] == ""


def test_facts_csv_is_an_attachment_with_the_fact_fields(server):
    r = _get(server, q="法律意见书", format="csv")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="facts.csv"'
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"), newline="")))
    assert tuple(rows[0]) == FACT_FIELDS
    records = [dict(zip(FACT_FIELDS, row, strict=True)) for row in rows[1:]]
    fact = _the_79(records)
    assert fact["number"] in ("79", "79.0") and fact["predicate"] == "出具"
    # the same facts as the JSON, in the same order
    assert [f["clause"] for f in records] == [f["clause"] for f in _get(server, q="法律意见书").json()["facts"]]


def test_facts_filters_by_year_and_unit_given_once_or_repeated(server):
    once = _get(server, q="法律意见书", year=2023).json()
    assert once["searched"]["years"] == [2023] and once["facts"]
    assert all(f["year"] == 2023 for f in once["facts"])
    repeated = _get(server, q="法律意见书", year=[2022, 2023]).json()
    assert repeated["searched"]["years"] == [2022, 2023]
    unit = _get(server, q="法律意见书", org="重点区域署").json()
    assert unit["facts"] and {f["org"] for f in unit["facts"]} == {ORG}
    _the_79(unit["facts"])
    assert len(_get(server, q="法律意见书", limit=1).json()["facts"]) == 1
    nothing = _get(server, q="法律意见书", year=2019).json()
    assert nothing["facts"] == [] and nothing["why"]


@pytest.mark.parametrize("params", [{"q": "法律意见书", "format": "xml"}, {"q": "法律意见书", "limit": 0},
                                    {"q": "法律意见书", "limit": 1001}, {"q": ""}, {"q": "   "}, {},
                                    {"q": "法律意见书", "year": "去年"}])
def test_bad_facts_requests_are_problems(server, params):
    r = _get(server, **params)
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == r.status_code


def test_facts_need_a_reader_key(server):
    r = _get(server, key=None, q="法律意见书")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert _get(server, key="wrong", q="法律意见书", format="csv").status_code == 401


def test_facts_in_the_openapi_schema(server):
    schema = httpx.get(server.url + "/openapi.json").json()
    op = schema["paths"]["/v1/facts"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"q", "year", "org", "limit", "format"}
    assert set(op["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    fact = schema["components"]["schemas"]["FactOut"]["properties"]
    assert tuple(fact) == FACT_FIELDS


# ---- govqa facts ------------------------------------------------------------------------------------
def govqa(*args):
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)


def test_govqa_facts_json(sample_index):
    r = govqa("facts", "法律意见书", "--index", str(sample_index), "--json")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert set(body) == {"query", "facts", "searched", "why"}
    assert set(_the_79(body["facts"])) == set(FACT_FIELDS)
    r = govqa("facts", "法律意见书", "--index", str(sample_index), "--json", "--year", "2023", "--org", "重点区域署",
              "--limit", "1")
    (only,) = json.loads(r.stdout)["facts"]
    assert only["org"] == ORG and only["value"] == "79件"


def test_govqa_facts_csv(sample_index):
    r = subprocess.run([sys.executable, "-m", "bot.cli", "facts", "法律意见书", "--index", str(sample_index), "--csv"],
                       capture_output=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    rows = list(csv.reader(io.StringIO(r.stdout.decode("utf-8"), newline="")))
    assert tuple(rows[0]) == FACT_FIELDS
    _the_79([dict(zip(FACT_FIELDS, row, strict=True)) for row in rows[1:]])
    assert r.stdout.endswith(b"\r\n") and not r.stdout.endswith(b"\r\n\n")  # the CSV as it is, no extra line


def test_govqa_facts_table(sample_index):
    r = govqa("facts", "法律意见书", "--index", str(sample_index))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["单位", "年份", "数字", "说法", "出处"]
    row = next(line for line in lines if "79件" in line and "出具 · 法律意见书" in line)
    assert row.startswith(ORG) and "2023年" in row and row.endswith("zhongdianquyu_2023.txt")
    # columns line up: every row's figure starts where the header's 数字 does (CJK counted twice)
    from bot.render import width

    column = width(lines[0][: lines[0].index("数字")])
    assert width(row[: row.index("79件")]) == column
    assert lines[-1].startswith("共 ") and lines[-1].endswith("个数字")


def test_govqa_facts_errors(sample_index, tmp_path):
    r = govqa("facts", "   ", "--index", str(sample_index))
    assert r.returncode == 2 and "empty" in r.stderr and not r.stdout
    r = govqa("facts", "法律意见书", "--index", str(tmp_path / "none"))
    assert r.returncode == 2 and "no index" in r.stderr and not r.stdout
    r = govqa("facts", "法律意见书", "--index", str(sample_index), "--limit", "0")
    assert r.returncode == 2 and "--limit" in r.stderr
    r = govqa("facts", "法律意见书", "--index", str(sample_index), "--json", "--csv")
    assert r.returncode == 2 and "--json and --csv" in r.stderr
