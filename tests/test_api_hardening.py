"""The HTTP API against a hostile client, over real HTTP on 127.0.0.1: `govqa serve` in a process of
its own (its protocol, its options, the default relative index path data/index), or the app in a
thread where a setting the environment cannot give is needed. The index is the sample reports,
embedded with the hashing embedder (fast; the answers do not matter here, the HTTP does)."""

from __future__ import annotations

import copy
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from bot.api import Keys, create_app
from bot.config import load_config
from bot.live import LiveService

from .conftest import REPO, SAMPLES, ServerThread

READ, ADMIN = "read-key-hardening", "admin-key-hardening"
SAMPLE = SAMPLES / "dangqun_2022.txt"
RAW_QUERY = "法律意见书"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVQA_")}
    env.update(GOVQA_EMBEDDER__NAME="hashing", PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    env.update(extra)
    return env


def _govqa(*args: str) -> list[str]:
    return [sys.executable, "-c", "from bot.cli import main; main()", *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory with the samples indexed at the default, relative, data/index."""
    work = tmp_path_factory.mktemp("serve")
    done = subprocess.run(_govqa("ingest", str(SAMPLES)), cwd=work, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (work / "data" / "index").is_dir()
    return work


class Serve:
    """`govqa serve` in a process of its own, in `cwd`, with GOVQA_* settings from `env`."""

    def __init__(self, cwd: Path, **env: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(_govqa("serve", "--port", str(self.port)), cwd=cwd, env=_env(**env),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode(errors="replace")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("govqa serve did not become ready in 90 s")

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


def InThread(app) -> ServerThread:  # noqa: N802 (used as a context manager, as the class it was)
    """The app in a thread, served as `govqa serve` serves it (its protocol, no uvicorn proxy headers)."""
    return ServerThread(app, ready_path="/healthz", served_as_govqa=True)


def _app(index_dir: Path, keys: Keys, **api):
    config = copy.deepcopy(load_config(REPO / "config.toml", environ={}))
    config["embedder"]["name"] = "hashing"
    config["api"].update(api)
    return create_app(config, LiveService(config, index_dir, poll_seconds=0.5), keys)


@pytest.fixture(scope="module")
def open_server(workdir):
    """No keys (loopback use), no rate limit."""
    with Serve(workdir, GOVQA_API__RATE_PER_SECOND="0") as s:
        yield s


@pytest.fixture(scope="module")
def keyed_server(workdir):
    with Serve(workdir, GOVQA_API_KEYS=READ, GOVQA_ADMIN_KEYS=ADMIN, GOVQA_API__RATE_PER_SECOND="1",
               GOVQA_API__BURST="5") as s:
        yield s


def _raw(url: str, request: bytes, timeout: float = 10, until_close: bool = False) -> bytes:
    """Send bytes as they are on a new connection; the whole response (the server closes, or the
    response is complete as far as Content-Length says)."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return _read_response(sock, until_close)


def _read_response(sock: socket.socket, until_close: bool = False) -> bytes:
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not piece:
            return data
        data += piece
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and not until_close:
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and len(body) >= int(value):
                    return data


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def _header(response: bytes, name: bytes) -> bytes | None:
    for line in response.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


# ---------------------------------------------------------------- 1. header flood


def test_a_header_flood_is_refused_at_once_and_others_are_answered(open_server):
    port = open_server.port
    outcome: dict = {}

    def flood():
        piece = b"a" * 65536
        sent = 0
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: ")
            try:
                while sent < 100 * 1024 * 1024 and time.monotonic() - started < 30:
                    sock.sendall(piece)
                    sent += len(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass
            outcome["response"] = _read_response(sock)
        outcome["seconds"], outcome["sent"] = time.monotonic() - started, sent

    flooder = threading.Thread(target=flood)
    flooder.start()
    answers = []
    with httpx.Client(base_url=open_server.url, timeout=30) as client:
        while flooder.is_alive() or not answers:
            t = time.monotonic()
            r = client.get("/v1/search", params={"q": RAW_QUERY, "k": 3})
            answers.append((r.status_code, time.monotonic() - t))
    flooder.join()
    assert outcome["seconds"] < 1, outcome
    assert outcome["sent"] < 100 * 1024 * 1024, "the server read the whole 100 MB header"
    if outcome["response"]:  # a 431 problem, unless the reset of the closed connection lost it
        assert _status(outcome["response"]) == 431 and b"application/problem+json" in outcome["response"]
    assert all(code == 200 for code, _ in answers), answers
    assert max(seconds for _, seconds in answers) < 1, answers


def test_heads_under_the_limit_and_bodies_in_one_read_are_served(open_server):
    big_header = b"X-Note: " + b"b" * 8000 + b"\r\n"
    r = _raw(open_server.url, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + big_header + b"Connection: close\r\n\r\n")
    assert _status(r) == 200
    body = b'{"question": "' + "法律意见书".encode() * 4000 + b'"}'  # 60 kB in the same read as the head
    r = _raw(open_server.url, b"POST /v1/answer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    assert _status(r) == 422 and b"problem+json" in r  # a question too long: read and judged, not refused unread
    # two pipelined requests, the second's head in the first's read
    one = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    r = _raw(open_server.url, one + b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + big_header + b"Connection: close\r\n\r\n",
             until_close=True)
    assert r.count(b"HTTP/1.1 200") == 2


def test_an_oversize_head_in_one_read_is_431(open_server):
    r = _raw(open_server.url, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"c" * 20_000 + b"\r\n\r\n")
    assert _status(r) == 431 and _header(r, b"content-type") == b"application/problem+json"


# ---------------------------------------------------------------- 11. the parser's 400s, raw UTF-8


def test_raw_utf8_query_string_is_answered(open_server):
    """curl 'http://…/v1/search?q=法律意见书' sends the UTF-8 bytes as they are."""
    r = _raw(open_server.url, f"GET /v1/search?q={RAW_QUERY}&k=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
             .encode())
    assert _status(r) == 200, r[:300]
    import json

    assert json.loads(r.partition(b"\r\n\r\n")[2])["query"] == RAW_QUERY


def test_requests_the_parser_rejects_get_a_problem(open_server):
    r = _raw(open_server.url, b"GARBAGE\x01 / HTTP/1.1\r\n\r\n")
    assert _status(r) == 400 and _header(r, b"content-type") == b"application/problem+json"


# ---------------------------------------------------------------- 6. no-key mode: hosts and origins


def test_no_key_mode_answers_only_its_own_host_names(open_server):
    port = open_server.port
    with httpx.Client(base_url=open_server.url, timeout=30) as c:
        for host in ("localhost", f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "[::1]"):
            assert c.get("/v1/models", headers={"Host": host}).status_code == 200, host
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
            r = c.get("/v1/models", headers={"Host": host})
            assert r.status_code == 421 and r.headers["content-type"] == "application/problem+json", host
        assert c.get("/readyz", headers={"Host": "evil.example"}).status_code == 421


def test_no_key_mode_refuses_changes_from_other_sites(open_server, workdir):
    uploads = workdir / "data" / "index" / "uploads"
    before = set(uploads.glob("*")) if uploads.is_dir() else set()
    with httpx.Client(base_url=open_server.url, timeout=60) as c:
        count = len(c.get("/v1/reports").json()["reports"])
        form = {"files": ("evil.txt", SAMPLE.read_bytes().replace(b"2022", b"2019"), "text/plain")}
        r = c.post("/v1/reports", files=form, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
        for headers in ({"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                        {"Origin": f"http://localhost:{open_server.port}"}):  # another origin than the page's
            assert c.post("/v1/index/reload", headers=headers).status_code == 403, headers
        assert len(c.get("/v1/reports").json()["reports"]) == count
        assert (set(uploads.glob("*")) if uploads.is_dir() else set()) == before
        # the server's own pages (docs) and clients that send no Origin still work
        assert c.post("/v1/index/reload", headers={"Origin": open_server.url}).status_code == 200
        assert c.post("/v1/index/reload").status_code == 200


# ---------------------------------------------------------------- 7. uploads on a relative index path


def test_deleted_and_duplicate_uploads_leave_no_file(open_server, workdir):
    uploads = workdir / "data" / "index" / "uploads"
    with httpx.Client(base_url=open_server.url, timeout=120) as c:
        text = SAMPLE.read_text(encoding="utf-8").replace("2022", "2018")
        r = c.post("/v1/reports", files={"files": ("新报告.txt", text.encode("utf-8"), "text/plain")})
        assert r.status_code == 200, r.text
        added = r.json()["files"][0]
        assert added["status"] == "added" and added["file"] == "新报告.txt"
        assert len(list(uploads.glob("*.txt"))) == 1
        # the same text again, in another encoding: a duplicate, indexed once, its upload not kept
        r = c.post("/v1/reports", files={"files": ("又一份.txt", text.encode("gb18030"), "text/plain")})
        assert r.status_code == 200 and r.json()["files"][0]["status"] == "duplicate", r.text
        assert len(list(uploads.glob("*.txt"))) == 1
        # a sample report's own text: a duplicate of a report not uploaded
        r = c.post("/v1/reports", files={"files": ("copy.txt", SAMPLE.read_bytes(), "text/plain")})
        assert r.json()["files"][0]["status"] == "duplicate"
        assert len(list(uploads.glob("*.txt"))) == 1
        r = c.delete(f"/v1/reports/{added['report_id']}")
        assert r.status_code == 200 and r.json()["files"][0]["status"] == "removed"
    assert list(uploads.glob("*")) == [], "a deleted upload stays on disk"
    assert SAMPLE.is_file()


# ---------------------------------------------------------------- 8, 9, 10. keys, guesses, forwarded addresses


def test_upload_with_a_wrong_or_read_key_is_refused_before_its_body(keyed_server):
    for key, status in (("wrong-key", 401), (READ, 403)):
        head = (b"POST /v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: %s\r\nX-Forwarded-For: 10.9.%d.1\r\n"
                b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 45000000\r\n\r\n"
                % (key.encode(), status))
        port = keyed_server.port
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(head + b"--xyz\r\n")  # the rest of the 45 MB never comes
            started = time.monotonic()
            try:
                r = _read_response(sock)
            except TimeoutError:
                r = b""
        assert _status(r) in (status, 429), r[:200]
        assert time.monotonic() - started < 4, "the server waited for the body"
        assert _header(r, b"connection") == b"close"
        time.sleep(1.1)  # a token back (rate 1/s) for the next


def test_wrong_keys_are_rate_limited_whatever_address_they_claim(keyed_server):
    codes = []
    with httpx.Client(base_url=keyed_server.url, timeout=30) as c:
        for i in range(15):
            r = c.get("/v1/models", headers={"X-API-Key": f"guess-{i}", "X-Forwarded-For": f"10.0.{i}.1"})
            codes.append(r.status_code)
        assert 429 in codes and codes.count(401) <= 6, codes
        limited = c.get("/v1/models", headers={"X-API-Key": "guess-again"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"] == "application/problem+json"
        # a valid key has its own bucket: guessing from this address does not lock the key out
        assert c.get("/v1/models", headers={"X-API-Key": READ}).status_code == 200


def test_forwarded_for_is_not_believed_by_default(workdir):
    with Serve(workdir, GOVQA_API__RATE_PER_SECOND="1", GOVQA_API__BURST="3") as s, \
            httpx.Client(base_url=s.url, timeout=30) as c:
        codes = [c.get("/v1/models", headers={"X-Forwarded-For": f"10.1.{i}.1"}).status_code for i in range(10)]
    assert codes[:3] == [200, 200, 200] and codes.count(429) >= 5, codes


def test_forwarded_for_is_believed_from_configured_proxies(workdir):
    index = workdir / "data" / "index"
    with InThread(_app(index, Keys([], []), rate_per_second=1, burst=3, forwarded_allow_ips=["127.0.0.1"])) as s, \
            httpx.Client(base_url=s.url, timeout=30) as c:
        wait = time.monotonic() + 60
        while c.get("/readyz").status_code != 200 and time.monotonic() < wait:
            time.sleep(0.1)
        codes = [c.get("/v1/models", headers={"X-Forwarded-For": f"10.2.{i}.1"}).status_code for i in range(10)]
        assert codes == [200] * 10, codes
        same = [c.get("/v1/models", headers={"X-Forwarded-For": "10.3.0.1"}).status_code for _ in range(6)]
        assert 429 in same, same


# ---------------------------------------------------------------- 11. readyz, chunked bodies


def test_readyz_does_not_show_the_index_path(tmp_path):
    empty = tmp_path / "nowhere" / "index"
    empty.mkdir(parents=True)
    with InThread(_app(empty, Keys([READ], [ADMIN]))) as s:
        for key in (None, READ):
            r = httpx.get(s.url + "/readyz", headers={"X-API-Key": key} if key else {})
            assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
            assert str(tmp_path) not in r.text and "nowhere" not in r.text, r.text
        r = httpx.post(s.url + "/v1/index/reload", headers={"X-API-Key": ADMIN})
        assert r.status_code == 503 and str(tmp_path) not in r.text


def test_chunked_oversize_body_is_413(open_server):
    def chunks():
        yield b'{"question": "'
        for _ in range(200):
            yield b"a" * 1000
        yield b'"}'

    with httpx.Client(base_url=open_server.url, timeout=30) as c:
        r = c.post("/v1/answer", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json", r.text
        r = c.post("/v1/answer", json={"question": RAW_QUERY})
        assert r.status_code == 200


# ---------------------------------------------------------------- 12. the OpenAPI document is the behaviour


def test_strict_numbers_and_documented_limits(open_server):
    with httpx.Client(base_url=open_server.url, timeout=60) as c:
        for top_k in (True, "3", 2.5, 0):
            r = c.post("/v1/answer", json={"question": RAW_QUERY, "top_k": top_k})
            assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", top_k
        assert c.post("/v1/answer", json={"question": RAW_QUERY, "top_k": 3.0, "year": [2023.0]}).status_code == 200
        r = c.post("/v1/chat/completions", json={"messages": [{"role": "system", "content": "你是助手"}]})
        assert r.status_code == 422 and "user message" in r.json()["detail"]
        doc = c.get("/openapi.json").json()
    answer = doc["paths"]["/v1/answer"]["post"]["responses"]
    assert {"400", "413", "422", "429", "503"} <= set(answer)
    assert all(list(answer[code]["content"]) == ["application/problem+json"] for code in answer if code >= "400")
    request = doc["components"]["schemas"]["AnswerRequest"]["properties"]
    assert request["top_k"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 20}
    assert request["year"]["anyOf"][0] == {"type": "integer", "minimum": 1949, "maximum": 2100}
    upload = doc["paths"]["/v1/reports"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]
    assert "application/pdf" in upload["description"] and ".docx" in upload["description"]
    files = form["schema"]["properties"]["files"]
    assert files["maxItems"] == 20 and files["minItems"] == 1
    urls = upload["requestBody"]["content"]["application/json"]["schema"]["properties"]["urls"]
    assert urls["maxItems"] == 20 and urls["minItems"] == 1
    chat = doc["components"]["schemas"]["ChatRequest"]["properties"]["messages"]
    assert chat["contains"]["properties"]["role"] == {"const": "user"}


# Every check enabled (as --checks all, which would override the exceptions below). A refusal for
# size (431: request line and headers over 16 KB, from a query of invalid, too long values) is a
# rejection. Exceptions, for POST /v1/reports only, where the schema cannot say what the server
# checks: a file's bytes are any bytes, so whether a report can be read from them (else 422) is not
# in the schema, nor is a file name's suffix (.webp, .zip: 415); and a "file" schemathesis means as
# a JSON array is sent as a file of that text.
SCHEMATHESIS_CONFIG = """
[checks]
enabled = true
negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                                             "428", "429", "431"]

[[operations]]
include-path = "/v1/reports"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "415", "422", "429"]
checks.negative_data_rejection.enabled = false
"""


def test_schemathesis_all_checks_find_nothing(workdir, tmp_path):
    """`schemathesis run --checks all`, bounded (every phase: examples, coverage, fuzzing, stateful),
    against the server with keys: no failures. Then every upload still on disk is an indexed report's."""
    from embeddings import make_embedder

    from .conftest import load_index

    index = tmp_path / "index"
    shutil.copytree(workdir / "data" / "index", index)
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG, encoding="utf-8")
    cli = Path(sys.executable).parent / "schemathesis"
    with InThread(_app(index, Keys([READ], [ADMIN]), rate_per_second=0, max_upload_bytes=200_000)) as s:
        wait = time.monotonic() + 60
        while httpx.get(s.url + "/readyz").status_code != 200 and time.monotonic() < wait:
            time.sleep(0.1)
        run = subprocess.run([str(cli), "--config-file", str(config), "run", s.url + "/openapi.json",
                              "--header", f"X-API-Key: {ADMIN}", "--max-examples", "15", "--seed", "20261202",
                              "--generation-database", "none", "--no-color", "--workers", "1"],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    indexed = {Path(r.path).resolve() for r in load_index(index, make_embedder("hashing")).reports if r.path}
    kept = set((index / "uploads").glob("*")) if (index / "uploads").is_dir() else set()
    assert {p.resolve() for p in kept} <= indexed, "uploads on disk that no indexed report is"
