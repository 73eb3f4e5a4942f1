"""The answer API (FastAPI): the same answers as the CLI over HTTP, report upload and removal, an
OpenAI-compatible chat endpoint, health and readiness. Errors are application/problem+json."""


import functools
import hashlib
import hmac
import json
import logging
import math
import os
import re
import threading
import time
import unicodedata
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field, field_validator
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from retriever.ingest import ingest
from retriever.readers import SUPPORTED_SUFFIXES
from retriever.store import report_dict

from .answer import MAX_QUESTION_CHARS, MISSING, Answer
from .facts import DEFAULT_LIMIT, MAX_LIMIT
from .live import LiveService, NotReadyError
from .render import chat_text
from .service import index_settings

log = logging.getLogger("govqa.api")

PROBLEM = "application/problem+json"
READ_KEYS_ENV = "GOVQA_API_KEYS"
ADMIN_KEYS_ENV = "GOVQA_ADMIN_KEYS"
MODEL_ID = "govqa"
UPLOADS = "uploads"  # inside the index directory


# ---------------------------------------------------------------- errors


class Problem(HTTPException):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.extra = extra


_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           409: "Conflict", 413: "Content too large", 415: "Unsupported media type", 421: "Misdirected request", 422: "Unprocessable content",
           429: "Too many requests", 431: "Request header fields too large", 500: "Internal server error", 503: "Service unavailable"}


def problem_body(status: int, detail: str, **extra: Any) -> dict:
    return {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "detail": detail, **extra}


def problem_response(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(problem_body(status, detail, **extra), status_code=status, headers=headers, media_type=PROBLEM)


class BodyTooLarge(HTTPException):
    """Raised from receive() when a body streams in past its limit. An HTTPException, which FastAPI
    re-raises while reading a body (anything else there became a 400 "error parsing the body")."""

    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=f"the request body is larger than {limit} bytes")


class BodyLimit:
    """Rejects request bodies over the limit with 413, by Content-Length or while streaming in
    (chunked). Uploads (POST /v1/reports) get their own, larger limit."""

    def __init__(self, app: ASGIApp, max_body: int, max_upload: int):
        self.app, self.max_body, self.max_upload = app, max_body, max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload if scope["path"].rstrip("/") == "/v1/reports" else self.max_body
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await problem_response(413, BodyTooLarge(limit).detail, headers={"Connection": "close"})(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if not started:
                await problem_response(413, exc.detail, headers={"Connection": "close"})(scope, receive, send)


# ---------------------------------------------------------------- access


@dataclass(frozen=True)
class Caller:
    identity: str
    admin: bool


class Keys:
    """API keys from the environment: GOVQA_API_KEYS (read) and GOVQA_ADMIN_KEYS (read and
    change the index), comma-separated. With none set, everyone is admin (loopback use)."""

    def __init__(self, read: list[str], admin: list[str]):
        self.read = [k.encode() for k in read]
        self.admin = [k.encode() for k in admin]

    @classmethod
    def from_environ(cls, environ=None) -> "Keys":
        environ = os.environ if environ is None else environ

        def split(name: str) -> list[str]:
            return [k.strip() for k in environ.get(name, "").split(",") if k.strip()]

        return cls(split(READ_KEYS_ENV), split(ADMIN_KEYS_ENV))

    @property
    def enabled(self) -> bool:
        return bool(self.read or self.admin)

    @staticmethod
    def _matches(key: bytes, keys: list[bytes]) -> bool:
        found = False
        for k in keys:  # every key compared, in constant time each: no early exit to time
            found |= hmac.compare_digest(key, k)
        return found

    def role(self, key: str) -> str | None:
        raw = key.encode()
        if self._matches(raw, self.admin):
            return "admin"
        if self._matches(raw, self.read):
            return "read"
        return None


def _presented_key(headers) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class RateLimiter:
    """A token bucket per caller: `rate` requests a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = float(rate), int(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, identity: str) -> float:
        """0 when allowed, else the seconds until a request would be."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(identity, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[identity] = (tokens - 1, now)
                return 0.0
            self._buckets[identity] = (tokens, now)
            return (1 - tokens) / self.rate


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CALLER_SCOPE_KEY = "govqa.caller"


def _host_name(host: str) -> str:
    """A Host header's (or an Origin's authority's) name without the port, lower-case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _needs_admin(method: str, path: str) -> bool:
    path = path.rstrip("/")
    return (method == "POST" and path in ("/v1/reports", "/v1/index/reload")) or (
        method == "DELETE" and path.startswith("/v1/reports/"))


class Guard:
    """Who may ask, decided from the request line and headers alone, before the app reads a byte of
    the body (an upload was read whole, 45 MB, before a wrong key got its 401).

    With keys: every /v1 request needs a valid key; a missing or wrong key costs the client address
    a token of its rate limit (so keys cannot be guessed at full speed), and a caller with a read
    key asking to change the index is refused at once. Without keys (loopback use): only requests
    whose Host is this machine (localhost, 127.0.0.1, [::1], any port, or `allowed_hosts`) are
    answered, which stops DNS rebinding, and a request that changes something must not come from
    another site's page (its Origin, when sent, names this server). Refusals close the connection
    when a body was announced, so that it is never read."""

    def __init__(self, app: ASGIApp, keys: Keys, limiter: RateLimiter, allowed_hosts=()):
        self.app, self.keys, self.limiter = app, keys, limiter
        self.hosts = set(LOOPBACK_HOSTS) | {_host_name(h) for h in allowed_hosts if str(h).strip()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            who = self.check(scope)
        except Problem as exc:
            headers = dict(exc.headers or {})
            given = dict(scope["headers"])
            if given.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in given:
                headers["Connection"] = "close"  # the body stays unread
            await problem_response(exc.status_code, str(exc.detail), headers=headers)(scope, receive, send)
            return
        if who is not None:
            scope[CALLER_SCOPE_KEY] = who
        await self.app(scope, receive, send)

    def _client(self, scope: Scope) -> str:
        client = scope.get("client")
        return client[0] if client else "unknown"

    def _limit(self, identity: str) -> None:
        wait = self.limiter.take(identity)
        if wait:
            raise Problem(429, f"rate limit of {self.limiter.rate:g} requests a second (bursts of {self.limiter.burst}) "
                               "exceeded", headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def check(self, scope: Scope) -> Caller | None:
        headers = Headers(scope=scope)
        method, path = scope["method"], scope["path"]
        if not self.keys.enabled:
            host = headers.get("host")
            if host is not None and _host_name(host) not in self.hosts:
                raise Problem(421, "this server answers without API keys, so only for its own host names "
                                   "(localhost, 127.0.0.1, [::1] and api.allowed_hosts)")
            if method not in SAFE_METHODS:
                origin = headers.get("origin")
                if origin is not None and (origin == "null" or origin.partition("://")[2].lower() != (host or "").lower()):
                    raise Problem(403, "a request from another site's page may not change anything here")
                if headers.get("sec-fetch-site") == "cross-site":
                    raise Problem(403, "a request from another site's page may not change anything here")
        if not path.startswith("/v1/"):
            return None
        if not self.keys.enabled:
            who = Caller(f"ip:{self._client(scope)}", admin=True)
        else:
            key = _presented_key(headers)
            role = self.keys.role(key) if key else None
            if role is None:
                self._limit(f"ip:{self._client(scope)}")  # a wrong guess costs the guesser
                raise Problem(401, "an API key is required (X-API-Key or Authorization: Bearer)" if not key
                              else "the API key is not valid", headers={"WWW-Authenticate": "Bearer"})
            who = Caller("key:" + hashlib.sha256(key.encode()).hexdigest()[:16], admin=role == "admin")
        self._limit(who.identity)
        if _needs_admin(method, path) and not who.admin:
            raise Problem(403, "this needs an admin key (GOVQA_ADMIN_KEYS)")
        return who


# ---------------------------------------------------------------- models


_YEAR_COVERED = "the year the report covers; null when its text does not say (the report needs review)"


class CitationOut(BaseModel):
    n: int
    source: str
    title: str
    org: str
    year: int | None = Field(description=_YEAR_COVERED)
    section: str
    excerpt: str = Field(description="the exact report text")
    start: int = Field(description="offset of the excerpt in the report text")
    end: int
    score: float
    mark: list[int] | None = Field(None, description="the answering clause, as [start, end) within the excerpt")


class Searched(BaseModel):
    years: list[int]
    orgs: list[str]
    reports: int


class AnswerRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, examples=["重点区域署2023年出具了多少份法律意见书？"])
    year: int | list[int] | None = Field(None, description="only reports covering this year (or these years)")
    org: str | list[str] | None = Field(None, description="only this unit (name or short name), or these")
    top_k: int | None = Field(None, ge=1, le=20)

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the question is empty")
        return v

    @field_validator("year")
    @classmethod
    def _years(cls, v):
        for y in [v] if isinstance(v, int) else v or []:
            if not 1949 <= y <= 2100:
                raise ValueError(f"{y} is not a report year")
        return v


class TableRowOut(BaseModel):
    unit: str = Field(description="the unit the figure is of")
    year: int | None = Field(description="the year it is of; null when the report does not say")
    value: str = Field(description=f"the figure as the report writes it (79件), or {MISSING!r} when the report of "
                                   "that unit and year gives none")
    measure: str = Field(description="its measure word (件, 人次, %); empty when not stated")
    citation: int | None = Field(description=f"the n of the citation it is read from; null for {MISSING}")
    wording: str = Field(description="what it counts as the report words it: predicate · object (出具 · 法律意见书)")


class AnswerOut(BaseModel):
    question: str
    answer: str
    found: bool
    citations: list[CitationOut]
    related: list[CitationOut] = Field(description="nearest excerpts when the reports do not state the answer")
    table: list[TableRowOut] = Field(description="a comparison's figures, one row per unit and year (several units "
                                                 "or years asked); empty for an answer of one figure")
    searched: Searched
    generation: str = Field(description="the index generation that answered")
    took_ms: float


class HitOut(BaseModel):
    rank: int
    score: float
    passage_id: str
    report_id: str
    source: str
    org: str
    year: int | None = Field(description=_YEAR_COVERED)
    section: str
    text: str
    start: int
    end: int


class SearchOut(BaseModel):
    query: str
    years: list[int]
    orgs: list[str]
    reports_searched: int
    hits: list[HitOut]
    generation: str
    took_ms: float


class FactOut(BaseModel):
    org: str = Field(description="the unit of the report")
    year: int | None = Field(description=_YEAR_COVERED)
    value: str = Field(description="the figure as written (约5万余人次)")
    number: float = Field(description="the figure normalised (3.2万人次 -> 32000)")
    high: float | None = Field(description="a range's upper end")
    unit: str = Field(description="the measure word as written after the number (件, 万元, %)")
    measure: str = Field(description="the measure word without 万/亿 (元, 人次)")
    kind: str = Field(description="count, money, percent, ordinal, duration, size or ratio")
    qualifiers: list[str] = Field(description="what makes it not a plain figure of the year (余, 约, 累计, 同比 …)")
    predicate: str = Field(description="the verb of the clause (出具)")
    object: str = Field(description="what is counted (法律意见书)")
    clause: str = Field(description="the clause the figure is in, as the report writes it")
    section: str
    source: str
    title: str
    report_id: str
    start: int = Field(description="offset of the figure in the report text")
    end: int
    score: float = Field(description="how much of the query the figure's sentence and clause say (0-1)")


class FactsOut(BaseModel):
    query: str
    facts: list[FactOut]
    searched: Searched
    why: str = Field(description="why nothing was listed, when nothing was")


class ReportOut(BaseModel):
    id: str
    source: str
    title: str
    org: str
    aliases: list[str]
    region: str
    year: int | None = Field(description=_YEAR_COVERED)
    published: str | None
    passages: int


class ReportsOut(BaseModel):
    generation: str
    reports: list[ReportOut]


class FileOut(BaseModel):
    file: str
    status: str = Field(description="added, updated, unchanged, duplicate, removed or failed")
    report_id: str
    org: str
    year: int | None
    passages: int
    error: str
    warnings: list[str] = Field(default_factory=list,
                                description="e.g. another indexed report of the same unit and year (answers show both)")


class IngestOut(BaseModel):
    generation: str | None
    reports: int
    passages: int
    files: list[FileOut]
    seconds: float


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    model_config = {"extra": "allow"}  # temperature, max_tokens … are accepted and ignored


class ChatChoice(BaseModel):
    index: int
    message: dict[str, str]
    finish_reason: str


class ChatOut(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: dict[str, int]
    citations: list[CitationOut] = Field(description="the structured citations behind the [n] markers")
    govqa: AnswerOut


class ModelOut(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelsOut(BaseModel):
    object: Literal["list"]
    data: list[ModelOut]


# ---------------------------------------------------------------- app


def _as_tuple(v) -> tuple:
    if v is None:
        return ()
    return tuple(v) if isinstance(v, list) else (v,)


def _answer_out(answer: Answer, generation: str, took: float) -> dict:
    d = answer.to_dict()
    d.pop("why", None)
    return d | {"generation": generation, "took_ms": round(took * 1000, 2)}


def safe_name(name: str | None) -> str:
    """An uploaded file's name for display only: the last path part, printable, at most 120 chars."""
    base = PurePath((name or "").replace("\\", "/")).name
    base = "".join(c for c in unicodedata.normalize("NFC", base) if c.isprintable()).strip()
    return base[-120:] or "upload"


SERVE_CONFIG_ENV = "GOVQA_SERVE_CONFIG"  # the settings `govqa serve --workers N` hands to its workers


def _list_setting(value) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value or () if str(v).strip()]


def forwarded_allow_ips(config: dict) -> list[str]:
    """`[api] forwarded_allow_ips`: the proxies whose X-Forwarded-For / X-Forwarded-Proto are
    believed (addresses or networks); empty by default, so a client's address is its peer's and one
    client cannot take many rate-limit identities by naming them."""
    return _list_setting(config["api"].get("forwarded_allow_ips", []))


def allowed_hosts(config: dict) -> list[str]:
    """`[api] allowed_hosts`: host names answered without API keys besides loopback's (the
    webhook's host is one when telegram.webhook_url is set)."""
    hosts = _list_setting(config["api"].get("allowed_hosts", []))
    webhook = config.get("telegram", {}).get("webhook_url", "")
    if webhook:
        hosts.append(urlsplit(webhook).netloc)
    return hosts


def app_from_environ() -> FastAPI:
    """The app of one worker process of `govqa serve --workers N` (a uvicorn factory): the settings
    the parent resolved, and its share of the cores."""
    given = json.loads(os.environ[SERVE_CONFIG_ENV])
    config = given["config"]
    live = LiveService(config, poll_seconds=float(config["api"]["reload_seconds"]))
    return create_app(config, live, load_first=True, compute_threads=int(given["compute_threads"]))


def create_app(config: dict, live: LiveService, keys: Keys | None = None, telegram=None,
               load_first: bool = False, compute_threads: int | None = None) -> FastAPI:
    """The API over `live`; with `telegram` (a bot.telegram.TelegramWebhook) the Telegram bot too,
    fed by webhook calls at its path. With `load_first` the index is loaded before the server
    takes requests (a worker beside others, which answer meanwhile); else /readyz says 503 until
    it is loaded. `compute_threads` bounds the requests computing at once (default: the cores)."""
    api = config["api"]
    keys = keys or Keys.from_environ()
    limiter = RateLimiter(float(api["rate_per_second"]), int(api["burst"]))
    index_root = live.root.root
    started_at = int(time.time())

    # Retrieval is CPU work under the GIL: as many threads as cores do it, the others queue. (The
    # default pool of 40 threads lost a quarter of the throughput to contention at 16 clients.)
    compute: dict[str, anyio.CapacityLimiter] = {}

    @asynccontextmanager
    async def lifespan(_app):
        compute["limiter"] = anyio.CapacityLimiter(compute_threads or os.cpu_count() or 2)
        if load_first:
            await anyio.to_thread.run_sync(live.reload)
        live.start()
        try:
            if telegram is not None:
                await telegram.start()
            yield
        finally:
            if telegram is not None:
                await telegram.stop()
            live.stop()

    async def off_loop(fn, *args, **kwargs):
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=compute["limiter"])

    app = FastAPIOffline(
        title="govqa", version=_version(), lifespan=lifespan,
        description="Answers from Chinese government annual reports (法治政府建设年度报告), each with the report "
                    "sentence it comes from. Send an API key as `X-API-Key` or `Authorization: Bearer` when the "
                    "server has keys configured.",
    )
    # outermost last: forwarded addresses (from configured proxies only), then who may ask (before
    # any body is read), then the body limits
    app.add_middleware(BodyLimit, max_body=int(api["max_body_bytes"]), max_upload=int(api["max_upload_bytes"]))
    app.add_middleware(Guard, keys=keys, limiter=limiter, allowed_hosts=allowed_hosts(config))
    proxies = forwarded_allow_ips(config)
    if proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)

    if telegram is not None:
        from .telegram import WEBHOOK_PATH

        @app.post(WEBHOOK_PATH, include_in_schema=False)
        async def telegram_webhook(request: Request) -> dict:
            given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
            if not hmac.compare_digest(given.encode(), telegram.secret.encode()):
                raise Problem(403, "the Telegram secret token header is missing or wrong")
            try:
                data = await request.json()
            except ValueError as exc:
                raise Problem(400, "the body is not JSON") from exc
            await telegram.feed(data)
            return {"ok": True}

    @app.exception_handler(HTTPException)
    async def _http_problem(request: Request, exc: HTTPException):
        return problem_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None),
                                **getattr(exc, "extra", {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['loc'][1:]) or e['loc'][0] if e['loc'] else 'body'}: {e['msg']}" for e in errors)
        return problem_response(422, detail or "invalid request", errors=errors)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "internal error; the server log has the details")

    async def caller(request: Request) -> Caller:
        who = request.scope.get(CALLER_SCOPE_KEY)  # the Guard authenticated and rate limited it
        if who is None:
            raise Problem(401, "an API key is required (X-API-Key or Authorization: Bearer)",
                          headers={"WWW-Authenticate": "Bearer"})
        return who

    async def admin(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if not who.admin:
            raise Problem(403, "this needs an admin key (GOVQA_ADMIN_KEYS)")
        return who

    def not_ready(problem: str) -> Problem:
        # the reason without the server's paths (no index in /srv/…): those are for its log and admins
        shown = problem
        for path in {str(Path(index_root).resolve()), str(index_root)}:
            shown = shown.replace(path, "the index directory")
        shown = re.sub(r"(?:[A-Za-z]:)?[\\/][^\s:'\"]+", "…", shown)
        return Problem(503, f"the index is not ready: {shown}", headers={"Retry-After": "2"})

    def service():
        try:
            return live.get()
        except NotReadyError as exc:
            raise not_ready(str(exc)) from exc

    Reader = Annotated[Caller, Depends(caller)]
    Admin = Annotated[Caller, Depends(admin)]

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Ready to answer: the index is loaded",
             responses={503: {"description": "not ready (no index yet, or still loading)"}})
    async def readyz() -> dict[str, Any]:
        s = service()
        return {"status": "ready", "generation": s.generation, "reports": len(s.index.reports), "passages": s.index.size}

    @app.post("/v1/answer", response_model=AnswerOut, tags=["answers"],
              summary="Answer a question with the report sentences it comes from")
    async def answer(body: AnswerRequest, who: Reader) -> dict:
        t = time.perf_counter()
        s = service()
        try:
            a = await off_loop(s.composer.answer, body.question, years=_as_tuple(body.year), orgs=_as_tuple(body.org),
                               top_k=body.top_k)
        except ValueError as exc:
            raise Problem(422, str(exc)) from exc
        return _answer_out(a, s.generation, time.perf_counter() - t)

    @app.get("/v1/search", response_model=SearchOut, tags=["answers"], summary="Ranked passages for a query")
    async def search(who: Reader, q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS)],
               k: Annotated[int, Query(ge=1, le=100)] = 10,
               year: Annotated[list[int], Query(description="repeatable")] = [],  # noqa: B006
               org: Annotated[list[Annotated[str, Query(max_length=100)]], Query(description="repeatable")] = [],  # noqa: B006
               mode: Literal["hybrid", "lexical", "dense"] = "hybrid") -> dict:
        t = time.perf_counter()
        if not q.strip():
            raise Problem(422, "q: the query is empty")
        s = service()
        filters = s.searcher.catalog.resolve(q, years=year, orgs=org)
        result = await off_loop(s.searcher.search, q, k=k, filters=filters, mode=mode)
        hits = [{"rank": i + 1, "score": h.score, "passage_id": h.passage.id, "report_id": h.passage.report_id,
                 "source": h.passage.source, "org": h.passage.org, "year": h.passage.year, "section": h.passage.section,
                 "text": h.passage.text, "start": h.passage.start, "end": h.passage.end} for i, h in enumerate(result.hits)]
        return {"query": q, "years": list(filters.years), "orgs": list(filters.orgs), "reports_searched": len(result.reports),
                "hits": hits, "generation": s.generation, "took_ms": round((time.perf_counter() - t) * 1000, 2)}

    @app.get("/v1/facts", response_model=FactsOut, tags=["answers"],
             summary="The figures the reports give for a query (79件 出具 · 法律意见书), as JSON or CSV",
             responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                              "description": "with format=csv: the same facts as a CSV attachment (facts.csv)"}})
    async def facts(who: Reader, q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS,
                                                             description="what the figures count: 法律意见书, 2023年行政复议案件")],
                    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
                    year: Annotated[list[Annotated[int, Query(ge=1949, le=2100)]], Query(description="repeatable")] = [],  # noqa: B006
                    org: Annotated[list[Annotated[str, Query(max_length=100)]], Query(description="repeatable")] = [],  # noqa: B006
                    format: Literal["json", "csv"] = "json"):
        if not q.strip():
            raise Problem(422, "q: the query is empty")
        s = service()
        try:
            result = await off_loop(s.composer.facts.find, q, years=year, orgs=org, limit=limit)
        except ValueError as exc:
            raise Problem(422, str(exc)) from exc
        if format == "csv":
            return Response(result.to_csv(), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="facts.csv"'})
        return result.to_dict()

    @app.get("/v1/reports", response_model=ReportsOut, tags=["reports"], summary="The indexed reports")
    def reports(who: Reader) -> dict:
        s = service()
        counts = s.index.passage_counts()
        rows = []
        for i, r in enumerate(s.index.reports):
            d = report_dict(r)
            d.pop("path", None)  # server paths stay on the server
            rows.append(d | {"passages": int(counts[i])})
        return {"generation": s.generation, "reports": rows}

    def uploads_folder() -> Path:
        return (Path(index_root) / UPLOADS).resolve()

    def unlink_upload(path: str) -> None:
        """Delete an uploaded file, and only that: a path outside the uploads folder (a report
        ingested from elsewhere) is left alone. Both sides resolved: the index path may be relative
        (the default data/index), the paths ingest reports absolute."""
        target = Path(path).resolve()
        if target.parent == uploads_folder():
            target.unlink(missing_ok=True)

    def _ingest_out(result, shown: dict[str, str]) -> dict:
        files = [{"file": shown.get(f.path, Path(f.path).name), "status": f.status, "report_id": f.report_id,
                  "org": f.org, "year": f.year, "passages": f.passages, "error": f.error,
                  "warnings": list(f.warnings)} for f in result.files]
        return {"generation": result.generation, "reports": result.reports, "passages": result.passages,
                "files": files, "seconds": round(result.seconds, 3)}

    def _run_ingest(**kwargs):
        result = ingest(index_root, embedder=live.embedder, keep_generations=int(config["index"]["keep_generations"]),
                        settings=index_settings(config), **kwargs)
        live.reload()
        return result

    @app.post("/v1/reports", response_model=IngestOut, tags=["reports"],
              summary="Upload report files (txt, docx, pdf, html) and index them (admin)",
              responses={413: {"description": "upload too large"}, 415: {"description": "not a report file type"},
                         422: {"description": "no file could be read"}})
    def upload(who: Admin, files: Annotated[list[UploadFile], File(description="one or more report files")]) -> dict:
        if len(files) > int(api["max_files"]):
            raise Problem(413, f"at most {api['max_files']} files per upload")
        bad = [safe_name(f.filename) for f in files if PurePath(safe_name(f.filename)).suffix.lower() not in SUPPORTED_SUFFIXES]
        if bad:
            raise Problem(415, f"{', '.join(bad)}: not a report file type (accepted: {', '.join(SUPPORTED_SUFFIXES)})")
        folder = uploads_folder()
        folder.mkdir(parents=True, exist_ok=True)
        stored, shown, manifest = [], {}, {}
        for f in files:
            name = safe_name(f.filename)
            data = f.file.read()
            # the stored name is the content hash: the client's file name never becomes a path
            target = folder / (hashlib.sha256(data).hexdigest()[:24] + PurePath(name).suffix.lower())
            if not target.exists():
                tmp = folder / f".{uuid.uuid4().hex}.part"
                tmp.write_bytes(data)
                os.replace(tmp, target)
            stored.append(target)
            shown[str(target)] = name
            manifest[target.name] = {"source": name}
        result = _run_ingest(paths=stored, manifest=manifest)
        out = _ingest_out(result, shown)
        for f in result.files:  # kept only while indexed: a failed file or a second copy of a report goes
            if f.status in ("failed", "duplicate"):
                unlink_upload(f.path)
        if result.failed and len(result.failed) == len(result.files):
            raise Problem(422, "; ".join(f"{shown.get(f.path, '?')}: {f.error}" for f in result.failed), files=out["files"])
        return out

    @app.delete("/v1/reports/{report_id}", response_model=IngestOut, tags=["reports"],
                summary="Remove one report from the index (admin)", responses={404: {"description": "no such report"}})
    def delete_report(who: Admin, report_id: str) -> dict:
        if not re.fullmatch(r"[0-9a-f]{16}", report_id):
            raise Problem(404, f"no indexed report has the id {report_id!r}")
        try:
            result = _run_ingest(paths=[], remove=[report_id])
        except KeyError as exc:
            raise Problem(404, str(exc.args[0])) from exc
        for f in result.files:
            if f.status == "removed":
                unlink_upload(f.path)
        return _ingest_out(result, {})

    @app.post("/v1/index/reload", tags=["reports"], summary="Switch to the newest index generation now (admin)")
    def reload(who: Admin) -> dict[str, Any]:
        generation = live.reload()
        if generation is None:
            raise not_ready(live.problem)
        return {"generation": generation}

    @app.get("/v1/models", response_model=ModelsOut, tags=["openai"], summary="OpenAI-compatible model list")
    async def models(who: Reader) -> dict:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": started_at, "owned_by": "govqa"}]}

    @app.post("/v1/chat/completions", response_model=ChatOut, tags=["openai"],
              summary="OpenAI-compatible chat: the last user message is the question, read as a follow-up "
                      "of the user messages before it",
              responses={200: {"content": {"text/event-stream": {}}, "description": "with stream: true, server-sent events"}})
    async def chat(body: ChatRequest, who: Reader):
        asked = _user_texts(body.messages)
        t = time.perf_counter()
        s = service()

        def compose():
            question = asked[0]
            for text in asked[1:]:  # "那2022年呢？" after a question is that question for 2022
                question = s.composer.follow_up(question, text)
            return s.composer.answer(question)

        try:
            a = await off_loop(compose)
        except ValueError as exc:
            raise Problem(422, str(exc)) from exc
        content = chat_text(a)
        out = _answer_out(a, s.generation, time.perf_counter() - t)
        cid, created = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())
        if not body.stream:
            prompt_tokens = sum(len(_text_of(m.content)) for m in body.messages)
            return {"id": cid, "object": "chat.completion", "created": created, "model": MODEL_ID,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(content),
                              "total_tokens": prompt_tokens + len(content)},
                    "citations": out["citations"], "govqa": out}

        def events():
            def chunk(delta: dict, finish: str | None = None, **extra) -> str:
                data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
                return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

            yield chunk({"role": "assistant", "content": ""})
            for piece in re.split(r"(?<=\n)", content):
                if piece:
                    yield chunk({"content": piece})
            yield chunk({}, "stop", citations=out["citations"], govqa=out)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def _text_of(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text")


def _user_texts(messages: list[ChatMessage], keep: int = 5) -> list[str]:
    """The last `keep` user messages with text, oldest first; the last one must be a question."""
    texts = [_text_of(m.content).strip() for m in messages if m.role == "user"]
    if not texts:
        raise Problem(422, "messages: there is no user message")
    if not texts[-1]:
        raise Problem(422, "messages: the last user message has no text")
    if any(len(t) > MAX_QUESTION_CHARS for t in texts[-keep:]):
        raise Problem(422, f"messages: a question is longer than {MAX_QUESTION_CHARS} characters")
    return [t for t in texts if t][-keep:]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("govqa")
    except PackageNotFoundError:
        return "0"
