"""The answer API over real HTTP: uvicorn on 127.0.0.1, the real index of the five reports."""

import copy
import shutil

import httpx
import pytest
import schemathesis

from bot.api import Keys, create_app
from bot.live import LiveService

from .conftest import HEADLINE, NEW_QUESTION, NEW_REPORT, ServerThread, needs_shared

READ, ADMIN = "read-key-for-tests", "admin-key-for-tests"
pytestmark = needs_shared()


def _app(config, index_dir, embedder, **api):
    config = copy.deepcopy(config)
    config["api"].update(api)
    return create_app(config, LiveService(config, index_dir, embedder=embedder, poll_seconds=0.5), Keys([READ], [ADMIN]))


@pytest.fixture(scope="module")
def index_copy(real_index, tmp_path_factory):
    target = tmp_path_factory.mktemp("api") / "index"
    shutil.copytree(real_index, target)
    return target


@pytest.fixture(scope="module")
def server(config, index_copy, use_embedder):
    with ServerThread(_app(config, index_copy, use_embedder, max_upload_bytes=200_000, rate_per_second=0)) as s:
        yield s


def _client(server, key=READ):
    return httpx.Client(base_url=server.url, headers={"X-API-Key": key} if key else {}, timeout=60)


def test_headline_answered_with_its_citation(server):
    r = _client(server).post("/v1/answer", json={"question": HEADLINE})
    assert r.status_code == 200
    body = r.json()
    assert body["found"] and "79件" in body["answer"]
    c = body["citations"][0]
    assert "出具法律意见书79件" in c["excerpt"] and c["year"] == 2023 and "重点区域" in c["org"]
    assert c["source"] == "002_cdcfa3983a87bb7e.txt" and c["end"] - c["start"] == len(c["excerpt"])
    assert body["searched"]["years"] == [2023] and body["generation"].startswith("g") and body["took_ms"] > 0


def test_wrong_year_is_refused_with_related_excerpts(server):
    body = _client(server).post("/v1/answer", json={"question": HEADLINE.replace("2023", "2021")}).json()
    assert not body["found"] and body["citations"] == []
    assert "79" not in body["answer"] and "2021" in body["answer"]
    assert body["related"] and body["related"][0]["year"] == 2023


def test_auth_keys_and_roles(server):
    assert _client(server, key=None).post("/v1/answer", json={"question": HEADLINE}).status_code == 401
    r = _client(server, key="wrong").get("/v1/reports")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    bearer = httpx.get(server.url + "/v1/reports", headers={"Authorization": f"Bearer {READ}"})
    assert bearer.status_code == 200 and len(bearer.json()["reports"]) == 5
    forbidden = _client(server).post("/v1/index/reload")
    assert forbidden.status_code == 403 and forbidden.json()["status"] == 403
    assert _client(server, ADMIN).post("/v1/index/reload").status_code == 200
    # health needs no key
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize("question", ["", "   ", "问" * 10_000])
def test_bad_questions_are_422_problems(server, question):
    r = _client(server).post("/v1/answer", json={"question": question})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == 422
    assert "question" in body["detail"] and "问问问问问" not in r.text  # the input is not echoed back


def test_errors_are_problems_without_internals(server):
    c = _client(server)
    r = c.post("/v1/answer", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = c.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["title"] == "Not found"
    r = c.delete("/v1/reports/0123456789abcdef", headers={"X-API-Key": ADMIN})
    assert r.status_code == 404 and "0123456789abcdef" in r.json()["detail"]
    assert "Traceback" not in r.text


def test_search_and_reports(server):
    c = _client(server)
    r = c.get("/v1/search", params={"q": "法律意见书", "k": 3, "year": 2023})
    hits = r.json()["hits"]
    assert r.status_code == 200 and len(hits) == 3 and all(h["year"] == 2023 for h in hits)
    reports = c.get("/v1/reports").json()["reports"]
    assert {r["year"] for r in reports} == {2022, 2023} and all(r["passages"] > 0 for r in reports)
    assert all("path" not in r for r in reports)  # no server paths to clients


def test_oversize_upload_is_413(server):
    big = ("法治政府建设" * 40_000).encode()
    r = _client(server, ADMIN).post("/v1/reports", files={"files": ("big.txt", big, "text/plain")})
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"


def test_uploads_name_the_bad_file_and_why(server, index_copy):
    c = _client(server, ADMIN)
    r = c.post("/v1/reports", files={"files": ("../../etc/evil.exe", b"MZ\x00\x01", "application/octet-stream")})
    assert r.status_code == 415 and "evil.exe" in r.json()["detail"]
    r = c.post("/v1/reports", files={"files": ("空白.txt", b"   ", "text/plain")})
    assert r.status_code == 422 and "空白.txt" in r.json()["detail"]
    assert not list((index_copy / "uploads").glob("*")), "a failed upload leaves no file behind"
    assert not list(index_copy.rglob("evil*"))


def test_upload_makes_a_new_report_answerable_then_delete_removes_it(server):
    c = _client(server, ADMIN)
    before = c.post("/v1/answer", json={"question": NEW_QUESTION}).json()
    assert not before["found"]
    r = c.post("/v1/reports", files={"files": ("青石县2024年报告.txt", NEW_REPORT.encode("utf-8"), "text/plain")})
    assert r.status_code == 200, r.text
    summary = r.json()
    assert [f["status"] for f in summary["files"]] == ["added"] and summary["files"][0]["file"] == "青石县2024年报告.txt"
    after = c.post("/v1/answer", json={"question": NEW_QUESTION}).json()
    assert after["found"] and "146件" in after["answer"]
    assert after["citations"][0]["source"] == "青石县2024年报告.txt" and after["generation"] == summary["generation"]
    rid = summary["files"][0]["report_id"]
    assert c.delete(f"/v1/reports/{rid}").json()["files"][0]["status"] == "removed"
    assert not c.post("/v1/answer", json={"question": NEW_QUESTION}).json()["found"]
    assert len(c.get("/v1/reports").json()["reports"]) == 5


def test_openai_client_plain_and_streaming(server):
    import openai

    client = openai.OpenAI(base_url=server.url + "/v1", api_key=READ, max_retries=0)
    assert [m.id for m in client.models.list().data] == ["govqa"]
    messages = [{"role": "system", "content": "你是助手"}, {"role": "user", "content": HEADLINE}]
    reply = client.chat.completions.create(model="govqa", messages=messages)
    content = reply.choices[0].message.content
    assert "79件" in content and "[1] 深圳市龙岗区重点区域规划建设管理署 · 2023年 · " in content
    assert "002_cdcfa3983a87bb7e.txt" not in content  # a hash-like file name says nothing to a reader
    assert reply.model_extra["citations"][0]["year"] == 2023
    stream = client.chat.completions.create(model="govqa", messages=messages, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "".join(pieces) == content
    follow = messages + [{"role": "assistant", "content": content}, {"role": "user", "content": "在龙岗政府在线公开了多少条信息？"}]
    reply = client.chat.completions.create(model="govqa", messages=follow)
    assert "40余条" in reply.choices[0].message.content
    assert reply.model_extra["govqa"]["question"] == "重点区域署2023年在龙岗政府在线公开了多少条信息？"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).models.list()


def test_burst_gets_429_with_retry_after(config, index_copy, use_embedder):
    with ServerThread(_app(config, index_copy, use_embedder, rate_per_second=1, burst=3)) as s:
        codes = [_client(s).get("/v1/models") for _ in range(8)]
    limited = [r for r in codes if r.status_code == 429]
    assert [r.status_code for r in codes[:3]] == [200, 200, 200] and limited
    assert int(limited[0].headers["retry-after"]) >= 1 and limited[0].json()["status"] == 429


def test_docs_work_offline(server):
    page = httpx.get(server.url + "/docs").text
    assert "cdn" not in page.lower() and "/static-offline-docs/swagger-ui-bundle.js" in page
    assert httpx.get(server.url + "/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    doc = httpx.get(server.url + "/openapi.json").json()
    assert doc["paths"]["/v1/answer"]
    # the key schemes, so that /docs has an Authorize button; either one is accepted
    schemes = doc["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["bearer"]["scheme"] == "bearer"
    assert doc["paths"]["/v1/answer"]["post"]["security"] == [{"apiKey": []}, {"bearer": []}]


def test_a_report_by_id_has_the_text_its_citations_point_into(server):
    with _client(server) as c:
        cited = c.post("/v1/answer", json={"question": HEADLINE}).json()["citations"][0]
        report = c.get(f"/v1/reports/{cited['report_id']}").json()
        assert report["text"][cited["start"]:cited["end"]] == cited["excerpt"]
        assert report["org"] == cited["org"] and report["url"] == "" and report["review"] == [] and report["passages"] > 0
        listed = {r["id"]: r for r in c.get("/v1/reports").json()["reports"]}
        assert report["passages"] == listed[cited["report_id"]]["passages"] > 0
        assert "path" not in report  # server paths stay on the server
        for missing in ("0123456789abcdef", "not-an-id"):
            r = c.get(f"/v1/reports/{missing}")
            assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert _client(server, key=None).get(f"/v1/reports/{cited['report_id']}").status_code == 401


def test_chat_takes_govqa_filters(server):
    with _client(server) as c:
        body = {"messages": [{"role": "user", "content": "出具了多少份法律意见书？"}], "org": "重点区域署", "year": 2023}
        answer = c.post("/v1/chat/completions", json=body).json()["govqa"]
        assert answer["found"] and "79件" in answer["answer"] and answer["searched"]["orgs"] == ["重点区域署"]


def test_cors_is_off_by_default_and_allows_only_configured_origins(config, index_copy, use_embedder):
    portal = "https://portal.example.gov.cn"
    with ServerThread(_app(config, index_copy, use_embedder, cors_origins=[portal])) as s:
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key,content-type"}
        ok = httpx.options(s.url + "/v1/answer", headers={"Origin": portal, **preflight})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == portal
        assert "x-api-key" in ok.headers["access-control-allow-headers"].lower()
        other = httpx.options(s.url + "/v1/answer", headers={"Origin": "https://elsewhere.example", **preflight})
        assert "access-control-allow-origin" not in other.headers
        # CORS lets a page read the answer; the key is still needed
        assert httpx.get(s.url + "/v1/reports", headers={"Origin": portal}).status_code == 401


@pytest.fixture(scope="module")
def fuzz_server(config, real_index, tmp_path_factory, use_embedder):
    target = tmp_path_factory.mktemp("fuzz") / "index"
    shutil.copytree(real_index, target)
    with ServerThread(_app(config, target, use_embedder, rate_per_second=0, max_upload_bytes=100_000)) as s:
        yield s


def test_schemathesis_finds_no_server_errors(fuzz_server):
    """Requests generated from the OpenAPI schema (valid and not), every operation: never a 5xx,
    and every error a problem document."""
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")
    seen = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            response = case.call(base_url=fuzz_server.url, headers={"X-API-Key": ADMIN}, timeout=60)
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            if response.status_code >= 400:
                content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"][0]
                assert content_type.startswith("application/problem+json"), response.text[:300]
            seen.append(response.status_code)

        check()
    assert len(seen) > 100 and any(code == 200 for code in seen)
