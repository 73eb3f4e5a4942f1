"""/metrics, the query log and JSON logs, over real HTTP: uvicorn on 127.0.0.1 with the real index
of the five reports (and `govqa serve --log-json` as a process)."""

import copy
import datetime as dt
import json
import os
import queue
import shutil
import subprocess
import sys
import threading

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.api import Keys, create_app
from bot.live import LiveService
from bot.observability import JsonFormatter, QueryLog

from .conftest import HEADLINE, NEW_REPORT, REPO, ServerThread, needs_shared, wait_for

READ, ADMIN = "read-key-for-metrics", "admin-key-for-metrics"


def _samples(text: str) -> dict[tuple, float]:
    """{(name, (label pairs sorted)): value} of a Prometheus exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _app(config, index, embedder, keys, **observability):
    config = copy.deepcopy(config)
    config["api"]["rate_per_second"] = 0
    config["observability"].update(observability)
    return create_app(config, LiveService(config, index, embedder=embedder, poll_seconds=0.5), keys)


@needs_shared()
def test_metrics_show_answers_and_requests_and_the_query_log_has_them(config, real_index, use_embedder, tmp_path):
    logs = tmp_path / "queries"
    logs.mkdir()
    old = logs / f"queries-{(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=40)).isoformat()}.jsonl"
    old.write_text('{"question": "old"}\n', encoding="utf-8")
    index = tmp_path / "index"
    shutil.copytree(real_index, index)
    app = _app(config, index, use_embedder, Keys([READ], [ADMIN]), query_log=str(logs), query_log_days=30)
    with ServerThread(app) as s, httpx.Client(base_url=s.url, headers={"X-API-Key": READ}, timeout=60) as c:
        assert c.post("/v1/answer", json={"question": HEADLINE}).json()["found"]
        assert not c.post("/v1/answer", json={"question": HEADLINE.replace("2023", "2021")}).json()["found"]
        chat = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": HEADLINE}]})
        assert chat.status_code == 200 and chat.json()["govqa"]["found"]
        with c.stream("POST", "/v1/chat/completions",
                      json={"stream": True, "messages": [{"role": "user", "content": HEADLINE}]}) as r:
            assert r.status_code == 200 and "[DONE]" in r.read().decode()
        assert httpx.post(s.url + "/v1/answer", json={"question": HEADLINE}).status_code == 401
        upload = c.post("/v1/reports", headers={"X-API-Key": ADMIN},
                        files={"files": ("qingshi.txt", NEW_REPORT.encode(), "text/plain")})
        assert upload.status_code == 200 and upload.json()["reports"] == 6

        unauthorized = httpx.get(s.url + "/metrics")
        assert unauthorized.status_code == 401 and unauthorized.headers["content-type"] == "application/problem+json"
        r = c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        m = _samples(r.text)

    answers = {(route, result): m[("govqa_answers_total", (("result", result), ("route", route)))]
               for route in ("/v1/answer", "/v1/chat/completions") for result in ("found", "refused")}
    assert answers == {("/v1/answer", "found"): 1, ("/v1/answer", "refused"): 1,
                       ("/v1/chat/completions", "found"): 2, ("/v1/chat/completions", "refused"): 0}

    def requests(route, status, method="POST"):
        return m.get(("govqa_http_requests_total", (("method", method), ("route", route), ("status", status))), 0)

    assert requests("/v1/answer", "200") == 2 and requests("/v1/answer", "401") == 1
    assert requests("/v1/chat/completions", "200") == 2 and requests("/metrics", "401", "GET") == 1
    assert requests("/readyz", "200", "GET") >= 1
    assert m[("govqa_http_request_duration_seconds_count", (("method", "POST"), ("route", "/v1/answer")))] == 3
    assert m[("govqa_index_ready", ())] == 1
    assert m[("govqa_index_reports", ())] == 6 and m[("govqa_index_passages", ())] > 100  # after the upload
    assert m[("govqa_ingest_duration_seconds_count", (("route", "/v1/reports"),))] == 1
    assert m[("govqa_ingest_duration_seconds_sum", (("route", "/v1/reports"),))] == pytest.approx(
        upload.json()["seconds"], abs=0.001)
    generation = next(labels for (name, labels) in m if name == "govqa_index_generation_info")
    assert dict(generation)["generation"] == "g000002" and m[("govqa_index_generation_number", ())] == 2

    # the query log: a line per answer, today's file; the 40-day-old file removed
    assert not old.exists()
    (today,) = logs.glob("queries-*.jsonl")
    assert today.name == f"queries-{dt.datetime.now(dt.UTC).date().isoformat()}.jsonl"
    lines = [json.loads(line) for line in today.read_text(encoding="utf-8").splitlines()]
    assert [e["found"] for e in lines] == [True, False, True, True]
    assert [e["route"] for e in lines] == ["/v1/answer"] * 2 + ["/v1/chat/completions"] * 2
    first = lines[0]
    assert first["question"] == HEADLINE and first["client"] == "127.0.0.1" and first["latency_ms"] > 0
    assert first["generation"] == "g000001" and first["time"].endswith("+00:00")  # answered before the upload
    assert first["key"].startswith("key:") and READ not in today.read_text(encoding="utf-8")


@needs_shared()
def test_metrics_need_no_key_without_keys_and_the_query_log_is_off_by_default(config, real_index, use_embedder,
                                                                              tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config["observability"]["query_log"] == ""
    with ServerThread(_app(config, real_index, use_embedder, Keys([], []))) as s:
        assert httpx.post(s.url + "/v1/answer", json={"question": HEADLINE}, timeout=60).json()["found"]
        m = _samples(httpx.get(s.url + "/metrics").text)
        assert httpx.get(s.url + "/openapi.json").json()["paths"].keys().isdisjoint({"/metrics"})
    assert m[("govqa_answers_total", (("result", "found"), ("route", "/v1/answer")))] == 1
    assert list(tmp_path.iterdir()) == []


def test_query_log_keeps_the_days_it_should(tmp_path):
    log = QueryLog(tmp_path, keep_days=30)  # (which prunes by the real date at start)
    today = dt.date(2026, 3, 31)
    for days in (40, 31, 30, 1, 0):
        (tmp_path / f"queries-{(today - dt.timedelta(days=days)).isoformat()}.jsonl").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("kept")
    log.prune(today)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt", "queries-2026-03-01.jsonl", "queries-2026-03-30.jsonl", "queries-2026-03-31.jsonl"]


def test_json_formatter_fields():
    import logging

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/healthz", "1.1", 200), None)
    out = json.loads(JsonFormatter().format(record))
    assert out["logger"] == "uvicorn.access" and out["status"] == 200 and out["path"] == "/healthz"
    assert out["message"] == '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200' and out["level"] == "INFO"


@needs_shared()
def test_serve_log_json_writes_uvicorn_and_govqa_lines_as_json(real_index, tmp_path):
    """`govqa serve --log-json` as a process: every stderr line is a JSON object, govqa's (the index
    loaded) and uvicorn's (started, the access line of a request) alike."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVQA_")} | {"HF_HUB_OFFLINE": "1", "GOVQA_API_KEYS": READ}
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--log-json", "--port", "0", "--index",
                             str(real_index), "--config", str(REPO / "config.toml")],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    seen: list[str] = []

    def next_matching(text):
        def check():
            while not lines.empty():
                seen.append(lines.get())
                if text in seen[-1]:
                    return seen[-1]
            return None
        return wait_for(check, 120, f"a log line with {text!r}")

    try:
        running = json.loads(next_matching("Uvicorn running on"))
        url = running["message"].split(" running on ")[1].split()[0]
        next_matching("serving index generation")
        assert httpx.get(url + "/readyz", timeout=10).status_code == 200
        access = json.loads(next_matching('"/readyz'))
        assert access["logger"] == "uvicorn.access" and access["status"] == 200 and access["path"] == "/readyz"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    records = [json.loads(line) for line in seen if line.strip()]  # every line parses
    assert {"govqa.live", "uvicorn.error", "uvicorn.access"} <= {r["logger"] for r in records}
